"""The rnn and transformer VAEs: padding never changes a score, generation gives valid ids, save/load restores."""

from __future__ import annotations

import pytest
import torch
from text_fixtures import SENTENCES, build, tiny_model_config
from vaekit_text import plugin
from vaekit_text.data import make_batch
from vaekit_text.decoding import decoder_inputs, filter_logits, real_tokens
from vaekit_text.rnn import AdaptiveOutput

import vaekit
from vaekit.core.batch import tile

ARCHS = ["rnn", "transformer"]


VARIANTS = {"gru": {"cell": "gru"}, "adaptive": {"output": "adaptive"},  # rnn variants
            "narrow_encoder": {"encoder_hidden_dim": 8, "num_layers": 2}, "latent_slots": {"latent_slots": 3}}


@pytest.mark.parametrize("arch", ARCHS + list(VARIANTS))
def test_padding_never_changes_a_sentence_log_likelihood(tmp_path, arch):
    _, model, _ = build(tmp_path, "rnn" if arch in VARIANTS else arch, **VARIANTS.get(arch, {}))
    model.eval()
    tok = plugin.tokenizer(model)
    short, long = "the cat sat", "the company said it expects a loss on friday"
    alone = make_batch([short], tok, 16)
    padded = make_batch([short, long], tok, 16)
    assert padded["tokens"].shape[1] > alone["tokens"].shape[1]  # the short one really is padded
    z = torch.randn(1, model.latent_dim)
    with torch.no_grad():
        lp_alone = model.decoder.log_prob(alone, z)
        lp_padded = model.decoder.log_prob(padded, torch.cat([z, torch.randn(1, model.latent_dim)]))
        q_alone, q_padded = model.posterior(alone), model.posterior(padded)
    torch.testing.assert_close(lp_padded[0], lp_alone[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(q_padded.mean[0], q_alone.mean[0], rtol=1e-5, atol=1e-5)
    # The pad id really is excluded: changing what fills the padding changes nothing.
    refilled = {**padded, "tokens": padded["tokens"].clone()}
    refilled["tokens"][0, alone["tokens"].shape[1]:] = tok.eos_id
    both_z = torch.randn(2, model.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(model.decoder.log_prob(refilled, both_z), model.decoder.log_prob(padded, both_z))
        torch.testing.assert_close(model.posterior(refilled).mean, model.posterior(padded).mean)


@pytest.mark.parametrize("cell, units", [("lstm", None), ("gru", None), ("lstm", 8)])
def test_encoder_matches_a_packed_bidirectional_rnn(tmp_path, cell, units):
    """The padded two-RNN encoder gives exactly the final states of torch's packed bidirectional RNN."""
    bundle, model, _ = build(tmp_path, "rnn", cell=cell, num_layers=2, encoder_hidden_dim=units)
    encoder = model.encoder
    assert encoder.forward_layers[1].hidden_size == (units or 32)  # tiny_model_config's hidden_dim: 32
    x = bundle.collate([bundle.train[i] for i in range(6)])["x"]
    assert len(set(x["lengths"].tolist())) > 1  # really a padded batch
    reference = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    first = encoder.forward_layers[0]
    packed_rnn = reference(first.input_size, first.hidden_size, num_layers=2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for layer, (ahead, back) in enumerate(zip(encoder.forward_layers, encoder.backward_layers, strict=True)):
            for name, weight in ahead.named_parameters():  # weight_ih_l0 -> weight_ih_l{layer}(_reverse)
                own = name.replace("_l0", f"_l{layer}")
                getattr(packed_rnn, own).copy_(weight)
                getattr(packed_rnn, own + "_reverse").copy_(getattr(back, name))
        packed = torch.nn.utils.rnn.pack_padded_sequence(encoder.embed(x["tokens"]), x["lengths"], batch_first=True,
                                                         enforce_sorted=False)
        state = packed_rnn(packed)[1]
        h = state[0] if cell == "lstm" else state
        expected = encoder.to_posterior(torch.cat([h[-2], h[-1]], -1)).chunk(2, dim=-1)[0]
        torch.testing.assert_close(encoder(x).mean, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_iw_nll_accepts_tiled_batches_and_is_finite(tmp_path, arch):
    bundle, model, _ = build(tmp_path, arch)
    x = bundle.collate([bundle.test[i] for i in range(3)])["x"]
    nll = vaekit.iw_nll(model.eval(), x, k=7, chunk_size=3)
    assert nll.shape == (3,) and torch.isfinite(nll).all() and (nll > 0).all()
    z = torch.randn(12, model.latent_dim)
    assert model.decoder.log_prob(tile(x, 4), z).shape == (12,)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("options", [{}, {"strategy": "sample", "temperature": 0.7},
                                     {"strategy": "sample", "top_k": 3}, {"strategy": "sample", "top_p": 0.8}])
def test_generation_yields_valid_ids_and_text(tmp_path, arch, options):
    _, model, _ = build(tmp_path, arch)
    info = model.config["info"]
    out = model.eval().sample(6, max_length=10, **options)
    tokens, lengths = out["tokens"], out["lengths"]
    assert tokens.dtype == torch.long and tokens.shape[0] == 6 and tokens.shape[1] <= 10
    assert ((tokens >= 0) & (tokens < info["vocab_size"])).all()
    for row, n in zip(tokens, lengths, strict=True):
        assert 1 <= n <= 10 and row[n - 1] == info["eos_id"]
        assert not (row[: n - 1] == info["eos_id"]).any() and not (row[:n] == info["pad_id"]).any()
        assert not (row[:n] == info["bos_id"]).any() and (row[n:] == info["pad_id"]).all()
    texts = plugin.decode_text(model, out)
    assert len(texts) == 6 and all(isinstance(t, str) for t in texts)
    vocab = set(plugin.tokenizer(model).words)
    assert all(w in vocab for t in texts for w in t.split())


def test_greedy_decoding_is_deterministic_and_sampling_is_not(tmp_path):
    _, model, _ = build(tmp_path, "rnn")
    z = torch.randn(4, model.latent_dim)
    first, second = model.decode(z), model.decode(z)
    assert torch.equal(first["tokens"], second["tokens"])
    draws = {tuple(model.decode(z, strategy="sample", temperature=2.0)["tokens"][0].tolist()) for _ in range(5)}
    assert len(draws) > 1


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.4)).tolist() == [[False, True, True, True]]
    assert not torch.isinf(filter_logits(logits, top_p=1.0)).any()
    shuffled = logits[:, [2, 0, 3, 1]]  # the filter follows the probabilities, not the positions
    assert torch.isinf(filter_logits(shuffled, top_p=0.7)).tolist() == [[True, False, True, False]]


def test_language_model_mode_has_no_latent(tmp_path):
    bundle, model, _ = build(tmp_path, "rnn", use_latent=False)
    x = bundle.collate([bundle.train[i] for i in range(4)])["x"]
    terms = model(x)
    assert torch.equal(terms.kl, torch.zeros(4))
    z1, z2 = torch.randn(4, model.latent_dim), torch.randn(4, model.latent_dim)
    torch.testing.assert_close(model.decoder.log_prob(x, z1), model.decoder.log_prob(x, z2))
    # q = p and z unused: a single importance sample already gives the exact NLL.
    torch.testing.assert_close(vaekit.iw_nll(model.eval(), x, k=1), -model.decoder.log_prob(x, z1))


def test_transformer_reads_z_at_the_scale_of_its_word_embeddings(tmp_path):
    """z ~ N(0, I) must not drown the words at initialisation: with nn.Linear's default scale the z term added to
    each input embedding had 30x their std, and a 12-minute CPU run wrote "the the the ..." (NLL 148 vs 133)."""
    _, model, _ = build(tmp_path, "transformer", latent_dim=32)
    decoder = model.decoder
    z = torch.randn(4096, 32, generator=torch.Generator().manual_seed(0))
    word = decoder.gpt.wte.weight.std().item()
    for layer in (decoder.z_embed, decoder.z_prefix):
        assert layer(z).std().item() == pytest.approx(word, rel=0.25)


def test_word_dropout_only_while_training(tmp_path):
    bundle, model, _ = build(tmp_path, "rnn", word_dropout=1.0)
    x = bundle.collate([bundle.train[i] for i in range(4)])["x"]
    z = torch.randn(4, model.latent_dim)
    model.train()
    dropped = model.decoder.log_prob(x, z)
    model.eval()
    kept = model.decoder.log_prob(x, z)
    assert not torch.allclose(dropped, kept)
    torch.testing.assert_close(model.decoder.log_prob(x, z), kept)


@pytest.mark.parametrize("arch", ARCHS + ["adaptive"])
def test_save_pretrained_and_load_restore_model_and_tokenizer(tmp_path, arch):
    bundle, model, _ = build(tmp_path, "rnn" if arch in VARIANTS else arch, **VARIANTS.get(arch, {}))
    model.eval()
    folder = vaekit.save_pretrained(model, tmp_path / "pretrained")
    assert (folder / "assets" / "tokenizer.json").is_file()
    loaded, loaded_plugin = vaekit.load(folder)
    assert loaded_plugin is plugin
    x = plugin.encode_text(loaded, [SENTENCES[0]])
    z = torch.randn(1, model.latent_dim)
    torch.testing.assert_close(loaded.decoder.log_prob(x, z), model.decoder.log_prob(x, z))
    assert plugin.decode_text(loaded, x) == [SENTENCES[0]]


def test_pretrained_encoder_folder(tmp_path):
    from transformers import BertConfig, BertModel

    bert = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=32), add_pooling_layer=False)
    bert.save_pretrained(str(tmp_path / "bert"))
    bundle, model, assets = build(tmp_path, "transformer", pretrained_encoder=str(tmp_path / "bert"))
    torch.testing.assert_close(model.encoder.bert.embeddings.word_embeddings.weight,
                               bert.embeddings.word_embeddings.weight)
    assert (assets / "pretrained_encoder_config.json").is_file()
    folder = vaekit.save_pretrained(model, tmp_path / "pretrained")
    (tmp_path / "bert" / "config.json").unlink()  # the original folder is gone where the model is used
    (tmp_path / "bert" / "model.safetensors").unlink()
    (tmp_path / "bert").rmdir()
    loaded, _ = vaekit.load(folder)
    x = bundle.collate([bundle.test[0]])["x"]
    torch.testing.assert_close(loaded.posterior(x).mean, model.eval().posterior(x).mean)


@pytest.mark.parametrize("arch", ARCHS)
def test_log_prob_in_row_chunks_matches_one_pass(tmp_path, arch, monkeypatch):
    from vaekit_text import decoding

    bundle, model, _ = build(tmp_path, arch)
    x = bundle.collate([bundle.train[i] for i in range(5)])["x"]
    z = torch.randn(5, model.latent_dim)
    whole = model.eval().decoder.log_prob(x, z)
    monkeypatch.setattr(decoding, "LOGITS_PER_CHUNK", 2 * x["tokens"].shape[1] * model.config["info"]["vocab_size"])
    assert decoding.chunked_rows(5, x["tokens"].shape[1], model.config["info"]["vocab_size"]) == 2
    torch.testing.assert_close(model.decoder.log_prob(x, z), whole)


def test_the_adaptive_softmax_is_a_distribution_and_scores_what_generation_samples_from(tmp_path):
    bundle, model, _ = build(tmp_path, "rnn", output="adaptive", adaptive_cutoffs=[5, 20])
    model.eval()
    vocab = model.config["info"]["vocab_size"]
    assert vocab > 20 and model.decoder.out.softmax.cutoffs == [5, 20, vocab]  # three clusters really used
    x = bundle.collate([bundle.train[i] for i in range(6)])["x"]
    z = torch.randn(6, model.latent_dim)
    with torch.no_grad():
        inputs = decoder_inputs(x["tokens"], *(getattr(model.decoder, k) for k in ("bos_id", "pad_id", "unk_id")))
        log_p = model.decoder.logits(inputs, z)[0]  # what generation draws the next token from
        by_position = log_p.gather(-1, x["tokens"].unsqueeze(-1)).squeeze(-1) * real_tokens(x)
        torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(log_p.shape[:2]))
        torch.testing.assert_close(model.decoder.log_prob(x, z), by_position.sum(1))
    assert (x["tokens"][real_tokens(x)] >= 20).any()  # the rarest cluster was scored, not only the head


def test_latent_memory_is_read_the_same_step_by_step_as_over_the_whole_sentence(tmp_path):
    bundle, model, _ = build(tmp_path, "rnn", latent_slots=3)
    model.eval()
    x = bundle.collate([bundle.train[i] for i in range(4)])["x"]
    z = torch.randn(4, model.latent_dim)
    decoder = model.decoder
    with torch.no_grad():
        inputs = decoder_inputs(x["tokens"], decoder.bos_id, decoder.pad_id, decoder.unk_id)
        state, steps = None, []
        for t in range(inputs.shape[1]):  # as generation runs: one input at a time, the state carried
            logits, state = decoder.logits(inputs[:, t:t + 1], z, state)
            steps.append(torch.log_softmax(logits[:, 0], -1).gather(1, x["tokens"][:, t:t + 1]))
        by_step = (torch.cat(steps, 1) * real_tokens(x)).sum(1)
        torch.testing.assert_close(decoder.log_prob(x, z), by_step, rtol=1e-5, atol=1e-4)
        before = decoder.log_prob(x, z)
        decoder.latent_memory.memory.weight.mul_(3.0)  # what the memory holds reaches every token's score
        assert (decoder.log_prob(x, z) - before).abs().min() > 1e-4


def test_a_language_model_with_latent_slots_generates_the_same_text_for_every_z(tmp_path):
    # use_latent=false: z is ignored in scoring (KL 0), so generation must ignore it too, memory included.
    _, model, _ = build(tmp_path, "rnn", latent_slots=3, use_latent=False)
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        model.decoder.latent_memory.memory.bias.zero_()  # only z could then make the memories differ
    first, second = (model.decode(3 * torch.randn(4, model.latent_dim), None, max_length=12) for _ in range(2))
    assert torch.equal(first["tokens"], second["tokens"])


def test_the_adaptive_softmax_scores_bf16_states_under_autocast():
    # trainer.precision=bf16 on a GPU: the LSTM hands bf16 states to the output layer under autocast, where
    # torch's AdaptiveLogSoftmaxWithLoss alone fails (it mixes dtypes). (A CPU LSTM refuses bf16 itself.)
    torch.manual_seed(0)
    out = AdaptiveOutput(32, 100, [20, 60])
    hidden, targets = torch.randn(40, 32).bfloat16(), torch.arange(40) * 2  # every cluster
    exact = out.token_log_prob(hidden.float(), targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scored, full = out.token_log_prob(hidden, targets), out(hidden)
        scored.sum().backward()
    assert scored.dtype == torch.float32 and full.dtype == torch.float32
    torch.testing.assert_close(scored, exact)
    torch.testing.assert_close(full.gather(1, targets.unsqueeze(1)).squeeze(1), exact)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in out.parameters())


def test_model_options_that_cannot_work_are_named(tmp_path):
    with pytest.raises(ValueError, match="encoder_hidden_dim: is for the rnn encoder"):
        tiny_model_config("transformer", encoder_hidden_dim=16)
    with pytest.raises(ValueError, match="encoder_hidden_dim: expected 1 or more units"):
        tiny_model_config("rnn", encoder_hidden_dim=0)
    with pytest.raises(ValueError, match=r"latent_slots: expected 0 or more memory vectors, for the rnn decoder; "
                                         r"got 4 \(transformer\)"):
        tiny_model_config("transformer", latent_slots=4)
    with pytest.raises(ValueError, match="latent_slots: expected 0 or more"):
        tiny_model_config("rnn", latent_slots=-1)
    with pytest.raises(ValueError, match="encoder_queries: expected 1 or more, got 0"):
        tiny_model_config("rnn", encoder_pooling="attention", encoder_queries=0)
    with pytest.raises(ValueError, match="encoder_queries: only with encoder_pooling: attention"):
        tiny_model_config("rnn", encoder_queries=4)
    with pytest.raises(ValueError, match="output: 'adaptive' is for the rnn decoder"):
        tiny_model_config("transformer", output="adaptive")
    with pytest.raises(ValueError, match=r"adaptive_cutoffs: expected increasing ids of 1 or more, got \[9, 9\]"):
        tiny_model_config("rnn", output="adaptive", adaptive_cutoffs=[9, 9])
    with pytest.raises(ValueError, match=r"model.adaptive_cutoffs: expected ids between 1 and the vocabulary's "
                                         r"\d+, got \[5, 100000\]"):
        build(tmp_path, "rnn", output="adaptive", adaptive_cutoffs=[5, 100_000])


def pack_into_one_buffer(module: torch.nn.Module) -> torch.Tensor:
    """Make the module's parameters views into one flat buffer, as cuDNN does with an RNN's weights on CUDA."""
    params = list(module.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


def test_an_rnn_packed_into_one_buffer_saves_loads_and_loads_into_place(tmp_path):
    """On CUDA every LSTM's weights are views into one buffer, which safetensors' save_model refuses to write."""
    bundle, model, _ = build(tmp_path, "rnn")
    model.eval()
    pack_into_one_buffer(model.decoder.rnn)
    folder = vaekit.save_pretrained(model, tmp_path / "pretrained")
    loaded, _ = vaekit.load(folder)
    x = plugin.encode_text(loaded, [SENTENCES[0]])
    z = torch.randn(1, model.latent_dim)
    torch.testing.assert_close(loaded.decoder.log_prob(x, z), model.decoder.log_prob(x, z))
    # --resume loads into a model that is already packed: the weights go into the buffer, not beside it
    _, target, _ = build(tmp_path / "other", "rnn")
    buffer = pack_into_one_buffer(target.decoder.rnn)
    from vaekit.io.checkpoint import load_weights

    load_weights(target, folder / "model.safetensors", folder / "config.json")
    torch.testing.assert_close(buffer[:8], model.decoder.rnn.weight_ih_l0.reshape(-1)[:8])
