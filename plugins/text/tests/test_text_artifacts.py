"""What people do with a text VAE: sample, paraphrase, reconstruct, interpolate; perplexity and collapse."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from text_fixtures import SENTENCES, build
from torch.utils.data import DataLoader
from vaekit_text import plugin

from vaekit.evaluation.evaluate import evaluate


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_sample_from_the_prior_and_around_a_sentence(tmp_path):
    _, model, _ = build(tmp_path)
    (path,) = plugin.sample(model, 5, None, tmp_path / "out", strategy="sample", top_p=0.9, max_length=8)
    assert path.name == "samples.txt" and len(lines(path)) == 5
    (around,) = plugin.sample(model, 7, None, tmp_path / "out", around=SENTENCES[0], max_length=8)
    assert around.name == "around.txt" and len(lines(around)) == 7
    vocab = set(plugin.tokenizer(model).words)
    assert all(w in vocab for line in lines(path) + lines(around) for w in line.split())


def test_reconstruct_sentences_and_txt_files(tmp_path):
    _, model, _ = build(tmp_path)
    listing = tmp_path / "more.txt"
    listing.write_text(f"{SENTENCES[1]}\n\n{SENTENCES[2]}\n", encoding="utf-8")
    (path,) = plugin.reconstruct(model, [SENTENCES[0], str(listing)], None, tmp_path / "out", max_length=8)
    text = lines(path)
    assert [line for line in text if line.startswith("input:")] == [f"input:          {s}" for s in SENTENCES[:3]]
    assert sum(line.startswith("reconstruction:") for line in text) == 3
    with pytest.raises(ValueError, match="missing.txt': no such file"):
        plugin.reconstruct(model, [str(tmp_path / "missing.txt")], None, tmp_path / "out", inputs_are="file")


def test_interpolate_writes_the_homotopy_table(tmp_path):
    _, model, _ = build(tmp_path)
    (path,) = plugin.interpolate(model, SENTENCES[0], SENTENCES[3], tmp_path / "out", steps=5)
    text = lines(path)
    assert text[0] == f"from: {SENTENCES[0]}" and text[1] == f"to:   {SENTENCES[3]}"
    # --steps counts every decoded point, both ends included, as in every plugin
    assert [line.split()[0] for line in text[3:]] == ["t=0.00", "t=0.25", "t=0.50", "t=0.75", "t=1.00"]


def test_traverse_writes_each_unit_over_the_span(tmp_path):
    _, model, _ = build(tmp_path)
    (path,) = plugin.traverse(model, tmp_path / "t", dims=[0, 2], span=2.0, steps=3)
    text = lines(path)
    assert text[0] == "base: the prior mean" and text[2] == "unit 0:" and text[7] == "unit 2:"
    rows = [line.split(maxsplit=1) for line in text[3:6] + text[8:11]]
    assert [r[0] for r in rows] == ["-2.00", "+0.00", "+2.00"] * 2
    # both rows pass through the base point itself (value 0 is the prior mean's own unit): the same sentence
    centre = plugin.decode_text(model, model.decode(model.prior(None, 1).mean, None))[0]
    assert text[4] == f"  +0.00  {centre}" and text[9] == f"  +0.00  {centre}"
    (path,) = plugin.traverse(model, tmp_path / "i", input=SENTENCES[1], dims="1", steps=2)
    assert lines(path)[0] == f"base: {SENTENCES[1]}" and len(lines(path)) == 5
    with pytest.raises(ValueError, match="--dims"):
        plugin.traverse(model, tmp_path / "bad", dims=[model.latent_dim])


def test_cli_options_have_defaults_and_reach_sample(tmp_path):
    parser = argparse.ArgumentParser()
    plugin.add_arguments("sample", parser)
    args = parser.parse_args(["--around", "the cat sat", "--strategy", "sample", "--top-k", "5", "--top-p", "0.9"])
    assert (args.around, args.strategy, args.top_k, args.top_p, args.token_temperature) == \
        ("the cat sat", "sample", 5, 0.9, None)
    defaults = vars(parser.parse_args([]))
    _, model, _ = build(tmp_path)
    (path,) = plugin.sample(model, 2, None, tmp_path / "out", **defaults)
    assert len(lines(path)) == 2


def test_perplexity_per_word_counts_eos(tmp_path):
    bundle, model, _ = build(tmp_path)
    loader = DataLoader(bundle.test, batch_size=3, collate_fn=bundle.collate)
    summary = {"nll": 20.0, "n_examples": 4, "kl": 3.0, "active_units": 4, "elbo": -21.0}
    metrics = plugin.eval_metrics(model, loader, summary)
    words = sum(len(s.split()) + 1 for s in SENTENCES[4:8])
    assert metrics["words"] == words
    assert metrics["ppl"] == pytest.approx(math.exp(20.0 * 4 / words))
    assert metrics["posterior_collapse"] is False
    first_two = plugin.eval_metrics(model, loader, {**summary, "n_examples": 2})
    assert first_two["words"] == sum(len(s.split()) + 1 for s in SENTENCES[4:6])


def test_collapsed_model_is_detected(tmp_path, capsys):
    bundle, model, _ = build(tmp_path)
    loader = DataLoader(bundle.test, batch_size=4, collate_fn=bundle.collate)
    with torch.no_grad():  # an encoder that answers N(0, I) whatever the sentence: the collapsed optimum
        model.encoder.to_posterior.weight.zero_()
        model.encoder.to_posterior.bias.zero_()
    summary = evaluate(model, loader, iw_samples=3)
    metrics = plugin.eval_metrics(model, loader, summary)
    assert summary["kl"] < 1e-6 and summary["active_units"] == 0
    assert metrics["posterior_collapse"] is True
    assert "WARNING: posterior collapse" in capsys.readouterr().err


def test_a_used_latent_is_not_flagged(tmp_path, capsys):
    bundle, model, _ = build(tmp_path)
    loader = DataLoader(bundle.test, batch_size=4, collate_fn=bundle.collate)
    with torch.no_grad():  # means that spread the sentences apart: a latent in use
        model.encoder.to_posterior.weight.mul_(50.0)
    summary = evaluate(model, loader, iw_samples=0)
    metrics = plugin.eval_metrics(model, loader, summary)
    assert summary["active_units"] >= 2 and summary["kl"] > 1.0
    assert metrics["posterior_collapse"] is False and "ppl_elbo_bound" in metrics
    assert "posterior collapse" not in capsys.readouterr().err


@pytest.mark.parametrize("option, message", [({"top_p": 1.5}, "--top-p"), ({"top_k": -1}, "--top-k"),
                                             ({"token_temperature": 0.0}, "--token-temperature"),
                                             ({"max_length": 0}, "--max-length"),
                                             ({"strategy": "nucleus"}, "--strategy"),
                                             ({"beam_size": 0, "strategy": "beam"}, "--beam-size"),
                                             ({"length_penalty": 1.0}, "--length-penalty"),
                                             ({"top_k": 5}, "--top-k: only with --strategy sample"),
                                             ({"top_p": 0.9, "strategy": "beam"},
                                              "--top-p: only with --strategy sample"),
                                             ({"token_temperature": 2.0, "strategy": "greedy"},
                                              "--token-temperature: only with --strategy sample")])
def test_bad_decoding_options_name_the_cli_option(tmp_path, option, message):
    _, model, _ = build(tmp_path)
    with pytest.raises(ValueError, match=message):
        plugin.sample(model, 2, None, tmp_path / "out", **option)


def test_temperature_scales_the_latents_and_token_temperature_the_softmax(tmp_path):
    """--temperature means the latents' spread in every plugin: at 0 every draw is the prior's mean (one sentence,
    n times); --token-temperature is the softmax's, checked and applied when sampling tokens."""
    _, model, _ = build(tmp_path)
    torch.manual_seed(0)
    (path,) = plugin.sample(model, 4, None, tmp_path / "zero", temperature=0.0)
    assert len(set(lines(path))) == 1
    (path,) = plugin.sample(model, 4, None, tmp_path / "around", around=SENTENCES[0], temperature=0.0)
    assert len(set(lines(path))) == 1
    hot = {tuple(lines(plugin.sample(model, 4, None, tmp_path / f"hot{i}", temperature=0.0, strategy="sample",
                                     token_temperature=5.0)[0])) for i in range(3)}
    assert len({line for draw in hot for line in draw}) > 1  # the same z, but tokens drawn from a flat softmax


def test_a_language_model_is_not_flagged_as_collapsed(tmp_path, capsys):
    """model.use_latent=false: KL 0 and no active units by design, so the collapse warning would only mislead."""
    bundle, model, _ = build(tmp_path, use_latent=False)
    loader = DataLoader(bundle.test, batch_size=4, collate_fn=bundle.collate)
    summary = evaluate(model, loader, iw_samples=1)
    metrics = plugin.eval_metrics(model, loader, summary)
    assert summary["kl"] == 0.0 and summary["active_units"] == 0
    assert metrics["posterior_collapse"] is False
    assert "posterior collapse" not in capsys.readouterr().err
