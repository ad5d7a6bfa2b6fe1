"""The mel VAE/CVAE: masks keep padding out, training lowers the loss, IW-NLL tiles dict batches, save/load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from speech_fixtures import build, fsdd_config, train
from vaekit_speech import plugin
from vaekit_speech.data import collate, pad_mels
from vaekit_speech.data_config import SpeechDataConfig

import vaekit
from vaekit.core.batch import tile


def steps(frames: int) -> int:
    return -(-frames // 8)  # the fixtures' model: 8 frames per latent step


@pytest.mark.parametrize("block_norm", [False, True])
def test_padding_never_changes_the_likelihood(tmp_path, data_dir, block_norm):
    bundle, model = build(fsdd_config(data_dir), tmp_path, block_norm=block_norm)
    model.eval()
    if block_norm:  # its layer norms' shifts start at 0: move them, or padded frames would be zero by chance
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                torch.nn.init.normal_(module.bias)
    mel = bundle.train[0]["x"]["mel"]
    unpadded = pad_mels([mel])
    padded = pad_mels([mel], length=mel.shape[-1] + 37)
    padded["mel"][..., mel.shape[-1]:] = 123.0  # whatever sits in the padding must not count
    n = steps(mel.shape[-1])
    z = torch.randn(1, steps(mel.shape[-1] + 37), 8)  # the padded latent steps hold noise: they must not count
    with torch.no_grad():
        assert torch.allclose(model.log_likelihood(unpadded, z[:, :n]), model.log_likelihood(padded, z), atol=1e-3)
        q_unpadded, q_padded = model.posterior(unpadded), model.posterior(padded)
        assert q_unpadded.mean.shape == (1, n, 8) and q_padded.mask.sum() == n
        assert torch.allclose(q_unpadded.mean, q_padded.mean[:, :n], atol=1e-5)
        assert torch.allclose(q_unpadded.logvar, q_padded.logvar[:, :n], atol=1e-5)
        assert torch.allclose(q_unpadded.kl(), q_padded.kl(), atol=1e-4)  # the engine's masked KL
        torch.manual_seed(0)
        nll_unpadded = vaekit.iw_nll(model, unpadded, k=8)
        torch.manual_seed(0)
        nll_padded = vaekit.iw_nll(model, padded, k=8)
        assert abs(nll_unpadded.item() - nll_padded.item()) < 0.05 * abs(nll_unpadded.item()) / 10
        # The same utterance in a batch beside a longer one scores the same as alone.
        longer = bundle.train[1]["x"]["mel"]
        batch = pad_mels([mel, torch.cat([longer, longer], -1)[:, :90]])
        both = model.log_likelihood(batch, torch.cat([F.pad(z[:, :n], (0, 0, 0, steps(90) - n)),
                                                      torch.randn(1, steps(90), 8)]))
        assert torch.allclose(both[0], model.log_likelihood(unpadded, z[:, :n])[0], atol=1e-3)


def test_lengths_instead_of_a_mask_give_the_same_likelihood(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir), tmp_path)
    batch = collate([bundle.train[i] for i in range(4)])["x"]
    with_lengths = {"mel": batch["mel"], "lengths": batch["mask"].sum(-1).long()}
    z = torch.randn(4, steps(batch["mel"].shape[-1]), 8)
    with torch.no_grad():
        assert torch.allclose(model.log_likelihood(batch, z), model.log_likelihood(with_lengths, z), atol=1e-4)


def test_the_differentiable_mean_is_the_generated_mel_with_gradients(tmp_path, data_dir):
    # The engine's condition cycle decodes a conversion through it; it must be what generate() gives, padding zero.
    bundle, model = build(fsdd_config(data_dir, condition_on=["speaker"]), tmp_path)
    batch = collate([bundle.train[i] for i in range(4)])
    x, c = batch["x"], batch["c"]
    z = torch.randn(4, steps(x["mel"].shape[-1]), 8, requires_grad=True)
    mean = model.decoder.differentiable_mean(x, z, c)
    generated = model.decoder.generate(z, c, lengths=x["mask"].sum(-1).long())
    assert torch.equal(mean["mask"], x["mask"]) and mean["mel"].shape == x["mel"].shape
    assert torch.allclose(mean["mel"], generated["mel"], atol=1e-5)
    assert (mean["mel"] * (1 - x["mask"])[:, None]).abs().max() == 0
    mean["mel"].sum().backward()
    assert z.grad.abs().sum() > 0


def test_training_lowers_the_loss_on_real_fsdd(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir), tmp_path)
    assert len(bundle.train) == 2 * 10 * 3 and len(bundle.test) == 2 * 10 * 5  # index 0-4 test, 5 val
    losses = train(model, bundle.train, steps=60, batch_size=12)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.1 * abs(first), (first, last)


def test_iw_nll_tiles_mel_and_mask_batches(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir, condition_on=["label", "speaker"]), tmp_path)
    batch = collate([bundle.test[i] for i in range(3)])
    tiled = tile(batch["x"], 4)
    assert tiled["mel"].shape[0] == 12 and tiled["mask"].shape == (12, batch["x"]["mask"].shape[1])
    nll = vaekit.iw_nll(model, batch["x"], batch["c"], k=5, chunk_size=2)
    elbo = model(batch["x"], batch["c"]).elbo
    assert nll.shape == (3,) and torch.isfinite(nll).all()
    assert (nll > 0).all() and (nll < -elbo + 50).all()


@pytest.mark.parametrize("likelihood,scale", [("gaussian", "predicted"), ("laplace", "learned"), ("laplace", 0.5)])
def test_likelihood_choices_train_and_generate(tmp_path, likelihood, scale):
    cfg = SpeechDataConfig(source="tones", n_tones=48, n_pitches=4, n_fft=256, hop_length=128, n_mels=32)
    bundle, model = build(cfg, tmp_path, likelihood=likelihood, scale=scale)
    losses = train(model, bundle.train, steps=3, batch_size=8)
    assert all(torch.isfinite(torch.tensor(losses)))
    out = model.eval().sample(3, length=5)  # five latent steps: 40 frames
    assert out["mel"].shape == (3, 32, 40) and (out["mask"] == 1).all()


def test_tones_have_known_pitch_and_timbre_classes(tmp_path):
    cfg = SpeechDataConfig(source="tones", n_tones=48, n_pitches=4, n_fft=256, hop_length=128, n_mels=32,
                           condition_on=["label", "speaker"])
    bundle = plugin.build_data(cfg, seed=0, assets=tmp_path)
    assert bundle.info["labels"] == ["220Hz", "247Hz", "277Hz", "311Hz"]
    assert bundle.info["speakers"] == ["bright", "dark", "hollow"]
    assert [c["name"] for c in bundle.info["conditions"]] == ["pitch", "timbre"]
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 48


def test_parse_condition(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir, condition_on=["label", "speaker"]), tmp_path)
    assert plugin.parse_condition("speaker=theo", model).tolist() == [[-1, 1]]
    assert plugin.parse_condition("digit=3", model).tolist() == [[3, -1]]
    assert plugin.parse_condition("digit=3,speaker=jackson", model).tolist() == [[3, 0]]
    assert plugin.parse_condition("label=7", model).tolist() == [[7, -1]]
    with pytest.raises(vaekit.PluginError, match="speaker must be one of jackson, theo; got 'nobody'"):
        plugin.parse_condition("speaker=nobody", model)
    with pytest.raises(vaekit.PluginError, match="unknown condition 'colour'"):
        plugin.parse_condition("colour=red", model)
    (tmp_path / "u").mkdir()
    _, unconditional = build(fsdd_config(data_dir), tmp_path / "u")
    with pytest.raises(vaekit.PluginError, match="unconditional"):
        plugin.parse_condition("digit=3", unconditional)


def test_save_and_load_keep_the_mel_statistics(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir), tmp_path)
    model.eval()
    folder = model.save_pretrained(tmp_path / "pretrained")
    loaded, loaded_plugin = vaekit.load(folder)
    assert loaded_plugin is plugin
    assert loaded.config["info"]["mel_mean"] == bundle.info["mel_mean"]
    batch = collate([bundle.test[i] for i in range(2)])
    z = torch.randn(2, steps(batch["x"]["mel"].shape[-1]), 8)
    with torch.no_grad():
        assert torch.allclose(model.log_likelihood(batch["x"], z), loaded.log_likelihood(batch["x"], z))


@pytest.mark.parametrize("override,message", [
    ("data.condition_on=[colour]", "condition_on: expected 'label' and/or 'speaker'"),
    ("data.n_mels=30", "n_mels: expected a multiple of 8"),
    ("data.normalize=loud", "data.normalize: expected one of 'none', 'rms', 'peak'"),
    ("data.root=/no/such/folder", "data.root: /no/such/folder does not exist"),
    ("model.scale=wide", "scale: expected a positive number, 'learned' or 'predicted'"),
])
def test_recipe_mistakes_are_named(repo, data_dir, monkeypatch, override, message):
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    with pytest.raises(vaekit.RecipeError, match=message):
        vaekit.load_recipe(repo / "recipes" / "speech" / "fsdd.yaml", [override])
