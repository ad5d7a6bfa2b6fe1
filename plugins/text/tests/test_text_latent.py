"""What makes a text latent carry the sentence: pooling, bag-of-words loss, reconstruction metrics, `vaekit encode`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from text_fixtures import SENTENCES, build, tiny_model_config, write_corpus
from torch.utils.data import DataLoader
from vaekit_text import TextDataConfig, plugin
from vaekit_text.metrics import reconstruction_metrics

import vaekit
from vaekit.cli import main
from vaekit.runs import build_model


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_pooled_encoder_ignores_padding(tmp_path, pooling):
    _, model, _ = build(tmp_path, encoder_pooling=pooling)
    model.eval()
    x = plugin.encode_text(model, ["the cat sat on the mat"])
    padded = {**x, "tokens": torch.cat([x["tokens"], torch.full((1, 5), 7)], 1)}  # junk beyond the length
    assert torch.allclose(model.posterior(x).mean, model.posterior(padded).mean, atol=1e-6)


def test_bag_of_words_loss_only_while_training(tmp_path):
    _, model, _ = build(tmp_path, bow_weight=1.0)
    _, plain, _ = build(tmp_path / "plain")
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("decoder.bow")})
    x = plugin.encode_text(model, SENTENCES[:3])
    z = torch.randn(3, 4)
    model.eval(), plain.eval()
    assert torch.allclose(model.log_likelihood(x, z), plain.log_likelihood(x, z))  # evaluation: log p(x|z) alone
    model.train()
    model.decoder.dropout.p = 0.0
    bow = torch.log_softmax(model.decoder.bow(z), -1)
    expected = plain.log_likelihood(x, z) + torch.stack(
        [bow[i, x["tokens"][i, :n]].sum() for i, n in enumerate(x["lengths"].tolist())])
    assert torch.allclose(model.log_likelihood(x, z), expected, atol=1e-5)


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_refined_proposal_runs_through_both_decoders_and_leaves_them_alone(tmp_path, arch):
    from vaekit.objectives.elbo import log_importance_weights
    from vaekit.objectives.refine import refine_posterior
    from vaekit.objectives.sampling import prior_for

    _, model, _ = build(tmp_path, arch=arch)
    model.eval()
    x = plugin.encode_text(model, SENTENCES)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    encoder_q = model.posterior(x)
    far = type(encoder_q)(encoder_q.mean.detach() + 3.0, encoder_q.logvar.detach())  # 18 nats of needless KL
    prior = prior_for(model, None, len(SENTENCES), far)
    torch.manual_seed(0)
    refined = refine_posterior(model, x, None, far, prior, steps=60)
    with torch.no_grad():
        elbo_far = log_importance_weights(model, x, None, 64, far, prior).mean()
        elbo_refined = log_importance_weights(model, x, None, 64, refined, prior).mean()
    assert elbo_refined > elbo_far + 5.0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_reconstruction_metrics_known_answers(tmp_path, monkeypatch):
    bundle, model, _ = build(tmp_path)
    loader = DataLoader(bundle.test, batch_size=3, collate_fn=bundle.collate)
    inputs = torch.nn.utils.rnn.pad_sequence([bundle.test.tokens[i] for i in range(4)], batch_first=True)
    lengths = torch.tensor([len(bundle.test.tokens[i]) for i in range(4)])
    seen = []  # the loader is in order: the posterior mean's first coordinate is each sentence's index

    def posterior(x, c=None):
        index = torch.arange(len(seen), len(seen) + len(x["lengths"])).float()
        seen.extend(index.tolist())
        return vaekit.DiagonalGaussian(index[:, None].repeat(1, 4), torch.zeros(len(index), 4))

    monkeypatch.setattr(model, "posterior", posterior)
    exact = lambda z, c=None, **o: {"tokens": inputs[z[:, 0].long()], "lengths": lengths[z[:, 0].long()]}  # noqa: E731
    monkeypatch.setattr(model, "decode", exact)
    metrics = reconstruction_metrics(plugin, model, loader, limit=4)
    assert metrics == {"recon_bleu4": pytest.approx(100.0), "recon_token_accuracy": 1.0, "recon_examples": 4,
                       "recon_unk_rate": 0.0}

    def first_token_wrong(z, c=None, **o):
        out = exact(z, c)
        tokens = out["tokens"].clone()
        tokens[:, 0] = plugin.tokenizer(model).unk_id
        return {"tokens": tokens, "lengths": out["lengths"]}

    monkeypatch.setattr(model, "decode", first_token_wrong)
    seen.clear()
    metrics = reconstruction_metrics(plugin, model, loader, limit=4)
    assert metrics["recon_token_accuracy"] == pytest.approx(1 - 4 / int(lengths.sum()))
    assert 0 < metrics["recon_bleu4"] < 100

    # Two decodings of the same posterior means: each sentence is encoded once, and each decoding scored on its own.
    decoders = {"exact": exact, "wrong": first_token_wrong}
    monkeypatch.setattr(model, "decode", lambda z, c=None, strategy="greedy", **o: decoders[strategy](z, c))
    seen.clear()
    metrics = reconstruction_metrics(plugin, model, loader, limit=4,
                                     decodings={"": {"strategy": "exact"}, "_two": {"strategy": "wrong"}})
    assert seen == [0.0, 1.0, 2.0, 3.0]
    assert metrics["recon_token_accuracy"] == 1.0
    assert metrics["recon_token_accuracy_two"] == pytest.approx(1 - 4 / int(lengths.sum()))
    assert metrics["recon_examples"] == 4


def test_reconstructions_are_scored_against_the_text_not_its_unks(tmp_path, monkeypatch):
    """A word the vocabulary lacks is <unk> in the model's input: a copy of that input is not the sentence. A
    literal <unk> in the text (PTB's rare words) is a word of the text, and its copy is right."""
    import sacrebleu

    (tmp_path / "train.txt").write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
    texts = ["The zebra sat on the mat!", "a cat ran in the garden", "the <unk> sat on the mat"]
    (tmp_path / "test.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    cfg = TextDataConfig(train=str(tmp_path / "train.txt"), test=str(tmp_path / "test.txt"), max_length=16,
                         lowercase=True)
    bundle = plugin.build_data(cfg, seed=0, assets=tmp_path / "assets")
    model = build_model(plugin, tiny_model_config(), bundle.info, tmp_path / "assets")
    tokens = torch.nn.utils.rnn.pad_sequence(bundle.test.tokens, batch_first=True)
    lengths = torch.tensor([len(t) for t in bundle.test.tokens])
    monkeypatch.setattr(model, "posterior", lambda x, c=None: vaekit.DiagonalGaussian(
        torch.arange(len(x["lengths"])).float()[:, None].repeat(1, 4), torch.zeros(len(x["lengths"]), 4)))
    monkeypatch.setattr(model, "decode", lambda z, c=None, **o: {"tokens": tokens[z[:, 0].long()],
                                                                 "lengths": lengths[z[:, 0].long()]})
    metrics = reconstruction_metrics(plugin, model, DataLoader(bundle.test, batch_size=3, collate_fn=bundle.collate),
                                     limit=3)
    copies = ["the <unk> sat on the mat <unk>", "a cat ran in the <unk>", "the <unk> sat on the mat"]  # as decoded
    assert [plugin.tokenizer(model).decode(t.tolist()) for t in bundle.test.tokens] == copies
    n_tokens = int(lengths.sum())  # 8 + 7 + 7, <eos> included; zebra, ! and garden are the vocabulary's <unk>s
    assert metrics["recon_unk_rate"] == pytest.approx(3 / (n_tokens - 3))
    assert metrics["recon_token_accuracy"] == pytest.approx(1 - 3 / n_tokens)
    assert metrics["recon_bleu4"] == pytest.approx(sacrebleu.corpus_bleu(copies, [texts], lowercase=True).score)
    assert metrics["recon_bleu4"] < 70
    assert metrics["recon_token_accuracy_unk_level"] == 1.0  # the figure an <unk> for an <unk> flatters
    assert metrics["recon_bleu4_unk_level"] == pytest.approx(100.0)


def test_a_sentences_reconstruction_does_not_depend_on_the_sentences_beside_it(tmp_path):
    # An untrained decoder seldom says <eos>, so its decodes run to the length cap: the cap must be the data's
    # max_length, as `vaekit reconstruct` has it, not one read off the batch's (or the reference's) length.
    bundle, model, _ = build(tmp_path)
    torch.manual_seed(0)
    alone = reconstruction_metrics(plugin, model, DataLoader(bundle.test, batch_size=1, collate_fn=bundle.collate), 6)
    together = reconstruction_metrics(plugin, model, DataLoader(bundle.test, batch_size=6, collate_fn=bundle.collate),
                                      6)
    assert alone == together


@pytest.mark.slow
def test_encode_verb_writes_posterior_means(tmp_path, capsys):
    paths = write_corpus(tmp_path / "corpus")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        f"plugin: text\ndata: {{train: {paths['train']}, val: {paths['val']}, test: {paths['test']}, max_length: 16}}\n"
        "model: {embed_dim: 16, hidden_dim: 32, latent_dim: 4}\n"
        "objective: {kl_target: 3.0}\n"
        "trainer: {max_steps: 3, batch_size: 8, progress: false, samples: 0}\neval: {iw_samples: 2}\n")
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    sentences = tmp_path / "more.txt"
    sentences.write_text("a dog ran in the park\nthe cat sat on the mat\n")
    out = tmp_path / "codes.npy"
    assert main(["encode", str(run), "the market closed higher on friday", str(sentences), "-o", str(out)]) == 0
    model, _ = vaekit.load(run)
    x = plugin.encode_text(model, ["the market closed higher on friday", "a dog ran in the park",
                                   "the cat sat on the mat"])
    assert np.allclose(np.load(out), model.posterior(x).mean.detach().numpy(), atol=1e-5)
    assert out.with_suffix(".png").is_file() and not out.with_suffix(".labels.txt").exists()
    assert main(["encode", str(run), "--split", "test", "-o", str(tmp_path / "test.npy")]) == 0
    assert np.load(tmp_path / "test.npy").shape == (4, 4)
    capsys.readouterr()
    assert main(["encode", str(run), "-o", str(out)]) == 2
    assert "give input files (or sentences) or --split" in capsys.readouterr().err
    assert main(["eval", str(run), "--iw-samples", "2"]) == 0
    assert "recon_bleu4" in capsys.readouterr().out


@pytest.mark.slow
def test_the_docs_text_api_runs_as_written(tmp_path, monkeypatch):
    """The docs' text-in-code block (paraphrase and homotopy page), run against a tiny run saved where it looks."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    page = Path(__file__).resolve().parents[3] / "docs" / "applications" / "paraphrase-homotopy.md"
    code = re.search(r"<!-- text-api -->\n```python\n(.*?)```\n<!-- /text-api -->", page.read_text(), re.S).group(1)
    _, model, _ = build(tmp_path / "tiny", latent_dim=32)
    model.save_pretrained(tmp_path / "runs" / "ptb_lstm")
    (tmp_path / "api.py").write_text(code)
    result = subprocess.run([sys.executable, "api.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "torch.Size([2, 32])" and len(eval(lines[1])) == 2 and len(eval(lines[2])) == 5  # noqa: S307


def test_transformer_cached_generation_equals_recomputing_the_prefix(tmp_path):
    from vaekit_text.decoding import autoregress

    _, model, _ = build(tmp_path, arch="transformer")
    model.eval()
    decoder, z = model.decoder, torch.randn(5, 4)

    def recompute(inputs, history):  # the whole prefix again at every step
        history = inputs.unsqueeze(1) if history is None else torch.cat([history, inputs.unsqueeze(1)], 1)
        return decoder.logits(history, z)[:, -1], history

    first = torch.full((5,), decoder.bos_id, dtype=torch.long)
    expected = autoregress(recompute, first, 12, decoder.eos_id, decoder.pad_id, decoder.bos_id)
    cached = decoder.generate(z, max_length=12)
    assert torch.equal(cached["tokens"], expected["tokens"]) and torch.equal(cached["lengths"], expected["lengths"])


def test_shared_embeddings_are_one_table_trained_through_both_paths_and_saved_once(tmp_path):
    _, model, _ = build(tmp_path, share_embeddings=True)
    table = model.decoder.embed.weight
    assert model.encoder.embed.weight is table
    x = plugin.encode_text(model, SENTENCES[:3])
    model.posterior(x).mean.sum().backward()  # the encoder's path alone: the decoder's likelihood is not involved
    read = x["tokens"][0, 0]
    assert table.grad[read].abs().sum() > 0
    loaded, _ = vaekit.load(vaekit.save_pretrained(model, tmp_path / "pretrained"))
    assert loaded.encoder.embed.weight is loaded.decoder.embed.weight
    torch.testing.assert_close(loaded.decoder.embed.weight, table.detach())


def test_shared_embeddings_are_for_the_rnn():
    from vaekit_text.config import TextModelConfig

    with pytest.raises(ValueError, match="share_embeddings: is for the rnn"):
        TextModelConfig(arch="transformer", share_embeddings=True)


@pytest.mark.parametrize("pooling", ["max", "attention"])
def test_the_transformer_refuses_pooling_it_does_not_do(pooling):
    from vaekit_text.config import TextModelConfig

    TextModelConfig(arch="transformer", encoder_pooling="mean")  # what it does: accepted
    with pytest.raises(ValueError, match=f"encoder_pooling: the transformer encoder mean-pools.*'{pooling}'"):
        TextModelConfig(arch="transformer", encoder_pooling=pooling)
