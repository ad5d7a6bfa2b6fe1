"""The VAE module (conditions, priors, sampling, objectives) and save_pretrained / vaekit.load round trips."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from helpers_toy_plugin import PLUGIN_NAME, PointsData, PointsModel, register_points_plugin
from safetensors.torch import save_file
from torch.utils.data import default_collate

import vaekit
from vaekit import IWAE, ConditionEmbedding, LearnedConditionalPrior, iw_nll
from vaekit.io.checkpoint import CheckpointError
from vaekit.runs import build_model


@pytest.fixture
def points_plugin(monkeypatch):
    return register_points_plugin(monkeypatch)



def build(plugin, tmp_path: Path, **model_kwargs):
    """A model built the way the trainer builds it (config set), and one batch of its data."""
    assets = tmp_path / "run-assets"
    bundle = plugin.build_data(PointsData(n_points=64), seed=0, assets=assets)
    model = build_model(plugin, PointsModel(**model_kwargs), bundle.info, assets)
    batch = default_collate([bundle.train[i] for i in range(len(bundle.train))])
    return model, batch


def train(model, batch, steps: int = 30, objective=None) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for step in range(steps):
        terms = model(batch["x"], batch["c"], objective=objective, step=step)
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
        losses.append(terms.loss.item())
    return losses


# -- the VAE module -------------------------------------------------------------------------------

def test_training_the_elbo_lowers_the_loss_and_moves_every_part(points_plugin, tmp_path):
    model, batch = build(points_plugin, tmp_path)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    losses = train(model, batch, steps=200)
    assert sum(losses[-20:]) / 20 < sum(losses[:20]) / 20 - 0.05
    for name, p in model.named_parameters():
        assert not torch.equal(p, before[name]), f"{name} did not train"


def test_iwae_objective_runs_and_backpropagates(points_plugin, tmp_path):
    model, batch = build(points_plugin, tmp_path, conditional=True)
    terms = model(batch["x"], batch["c"], objective=IWAE(k=8))
    assert terms.elbo.shape == (32,) and torch.isfinite(terms.loss)
    terms.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.decoder.likelihood.log_scale.grad != 0
    # The IWAE bound with k samples is at least the ELBO on average (same model, many draws).
    x, c = batch["x"].repeat(50, 1), batch["c"].repeat(50)
    with torch.no_grad():
        assert model(x, c, objective=IWAE(k=8)).elbo.mean() > model(x, c).elbo.mean()
        assert iw_nll(model, batch["x"], batch["c"], k=500).mean() < -model(x, c).elbo.mean()


def test_a_learned_conditional_prior_needs_the_condition(points_plugin, tmp_path):
    # Encoder and decoder ignore c here, so only the prior can complain about a missing condition.
    model, batch = build(points_plugin, tmp_path, conditional=False, conditional_prior=True)
    assert model.conditional_prior and isinstance(model.prior_net, LearnedConditionalPrior)
    with pytest.raises(ValueError, match="give a condition c"):
        model(batch["x"], None)
    with pytest.raises(ValueError, match="give a condition c"):
        model.sample(4)
    with torch.no_grad():  # make p(z|c) differ between classes
        model.prior_net.net[-1].bias.normal_()
        model.prior_net.net[-1].weight.normal_()
    priors = model.prior(torch.tensor([0, 1, 2]), 3)
    assert not torch.allclose(priors.mean[0], priors.mean[1])
    terms = model(batch["x"], batch["c"])
    posterior = model.posterior(batch["x"], batch["c"])
    assert torch.allclose(terms.kl, posterior.kl(model.prior(batch["c"], 32)))  # KL to p(z|c), not N(0, I)
    terms.loss.backward()
    assert model.prior_net.net[0].weight.grad.abs().sum() > 0  # the prior trains


def test_sample_shapes_conditions_and_temperature(points_plugin, tmp_path):
    model, _ = build(points_plugin, tmp_path)
    assert model.sample(7).shape == (7, 2)
    cold = model.sample(5, temperature=0.0)
    assert torch.allclose(cold, cold[:1].expand(5, 2))  # every draw is the prior mean
    conditional, _ = build(points_plugin, tmp_path / "c", conditional=True, conditional_prior=True)
    assert conditional.sample(6, torch.tensor([2])).shape == (6, 2)  # one condition for all n
    assert conditional.sample(3, torch.tensor([0, 1, 2])).shape == (3, 2)
    x = torch.randn(4, 2)
    assert conditional.reconstruct(x, torch.tensor([0, 1, 2, 0])).shape == (4, 2)
    assert torch.equal(conditional.encode(x, torch.zeros(4)).mean, conditional.posterior(x, torch.zeros(4)).mean)


def test_condition_embedding_with_several_label_columns():
    embedding = ConditionEmbedding([10, 3], out_dim=5)
    labels = torch.tensor([[7, 2], [0, 0], [9, 1]])
    expected = embedding.tables[0](labels[:, 0]) + embedding.tables[1](labels[:, 1])
    assert torch.equal(embedding(labels), expected)
    with pytest.raises(ValueError, match="expected 2 label column"):
        embedding(torch.tensor([1, 2, 3]))
    single = ConditionEmbedding(4, out_dim=3)
    assert single(torch.tensor([0, 3])).shape == (2, 3)
    real = ConditionEmbedding(condition_dim=6, out_dim=3)
    assert real(torch.randn(2, 6)).shape == (2, 3)
    with pytest.raises(ValueError, match="exactly one"):
        ConditionEmbedding(4, condition_dim=6)
    with pytest.raises(ValueError, match="exactly one"):
        ConditionEmbedding()


def test_a_learned_prior_over_two_label_columns_conditions_a_vae():
    prior = LearnedConditionalPrior(3, ConditionEmbedding([10, 4], out_dim=8), hidden=8)
    p = prior(torch.tensor([[1, 2], [9, 3]]), 2)
    assert p.mean.shape == (2, 3)
    assert torch.equal(p.mean, torch.zeros(2, 3)) and torch.equal(p.logvar, torch.zeros(2, 3))  # starts at N(0, I)


# -- save_pretrained / vaekit.load ----------------------------------------------------------------

def trained_and_saved(plugin, tmp_path: Path, **model_kwargs):
    model, batch = build(plugin, tmp_path, **model_kwargs)
    train(model, batch, steps=20)
    folder = model.save_pretrained(tmp_path / "pretrained")
    return model.eval(), batch, folder


def test_round_trip_gives_equal_weights_outputs_config_and_assets(points_plugin, tmp_path):
    model, batch, folder = trained_and_saved(points_plugin, tmp_path, conditional=True, conditional_prior=True,
                                             hidden=12)
    assert sorted(p.name for p in folder.iterdir()) == ["assets", "config.json", "model.safetensors"]
    original_center = model.encoder.center.clone()
    for asset in (tmp_path / "run-assets").iterdir():  # the run's own assets are gone: the folder must suffice
        asset.unlink()

    loaded, plugin = vaekit.load(folder)
    assert plugin is points_plugin and not loaded.training
    assert loaded.config["info"] == model.config["info"] and loaded.config["plugin"] == PLUGIN_NAME
    assert loaded.config["model"]["hidden"] == 12 and loaded.config["model"]["conditional_prior"] is True
    assert Path(loaded.config["assets_dir"]) == folder / "assets"
    assert torch.equal(loaded.encoder.center, original_center)  # read back from the saved assets

    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for key in state:
        assert torch.equal(state[key], loaded_state[key]), key
    x, c = batch["x"], batch["c"]
    z = torch.randn(32, 2)
    with torch.no_grad():
        assert torch.equal(loaded.posterior(x, c).mean, model.posterior(x, c).mean)
        assert torch.equal(loaded.posterior(x, c).logvar, model.posterior(x, c).logvar)
        assert torch.equal(loaded.log_likelihood(x, z, c), model.log_likelihood(x, z, c))
        assert torch.equal(loaded.prior(c, 32).mean, model.prior(c, 32).mean)
        assert torch.equal(loaded.decode(z, c), model.decode(z, c))


def test_a_loaded_model_saves_again_with_its_assets(points_plugin, tmp_path):
    model, _, folder = trained_and_saved(points_plugin, tmp_path)
    loaded, _ = vaekit.load(folder)
    again = loaded.save_pretrained(tmp_path / "copy")
    assert (again / "assets" / "center.json").read_text() == (folder / "assets" / "center.json").read_text()
    reloaded, _ = vaekit.load(again)
    assert reloaded.config["info"] == model.config["info"] and reloaded.config["model"] == model.config["model"]
    assert torch.equal(reloaded.decoder.likelihood.log_scale, model.decoder.likelihood.log_scale)
    loaded.save_pretrained(folder)  # over the folder it was loaded from: its assets must survive
    assert torch.equal(vaekit.load(folder)[0].encoder.center, model.encoder.center)


def test_load_finds_the_latest_checkpoint_of_a_run_folder(points_plugin, tmp_path):
    model, batch = build(points_plugin, tmp_path)
    run = tmp_path / "run"
    model.save_pretrained(run / "checkpoints" / "step-5")
    train(model, batch, steps=5)
    model.save_pretrained(run / "checkpoints" / "step-10")
    loaded, _ = vaekit.load(run)
    assert torch.equal(loaded.decoder.net[0].weight, model.decoder.net[0].weight)
    with pytest.raises(CheckpointError, match="no such run or model folder"):
        vaekit.load(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="is it a vaekit run"):
        vaekit.load(tmp_path / "empty")


def test_saving_over_an_existing_folder_replaces_it_and_leaves_no_temporary_folders(points_plugin, tmp_path):
    model, batch, folder = trained_and_saved(points_plugin, tmp_path)
    (folder / "stale.txt").write_text("from an older save")
    train(model.train(), batch, steps=3)
    model.save_pretrained(folder)
    assert not (folder / "stale.txt").exists()
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []
    loaded, _ = vaekit.load(folder)
    assert torch.equal(loaded.decoder.net[2].bias, model.decoder.net[2].bias)


def test_a_truncated_weights_file_is_a_checkpoint_error_naming_it(points_plugin, tmp_path):
    _, _, folder = trained_and_saved(points_plugin, tmp_path)
    weights = folder / "model.safetensors"
    for keep in (weights.stat().st_size // 2, 5):
        data = weights.read_bytes()
        weights.write_bytes(data[:keep])
        with pytest.raises(CheckpointError) as error:
            vaekit.load(folder)
        assert str(weights) in str(error.value)
    weights.unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        vaekit.load(folder)


def test_a_corrupt_or_incomplete_config_is_a_checkpoint_error_naming_it(points_plugin, tmp_path):
    _, _, folder = trained_and_saved(points_plugin, tmp_path)
    config = folder / "config.json"
    good = config.read_text()
    for text, expected in [('{"plugin": "enginetest_po', "not valid JSON"),
                           ("[1, 2]", "expected a JSON object"),
                           (good.replace('"plugin"', '"plugn"'), "missing key 'plugin'"),
                           (good.replace(f'"{PLUGIN_NAME}"', '"enginetest_gone"'), "unknown plugin 'enginetest_gone'"),
                           (good.replace('"hidden"', '"hiden"'), r"model\.hiden: unknown key; did you mean 'hidden'")]:
        config.write_text(text)
        with pytest.raises(CheckpointError, match=expected) as error:
            vaekit.load(folder)
        assert str(config) in str(error.value), text
    config.write_bytes(b"\xff\xfe\x00\x89PNG garbage")  # not even text
    with pytest.raises(CheckpointError, match="not valid JSON") as error:
        vaekit.load(folder)
    assert str(config) in str(error.value)
    config.unlink()
    with pytest.raises(CheckpointError, match="is it a vaekit run"):
        vaekit.load(folder)


def test_weights_that_do_not_fit_the_config_are_a_checkpoint_error(points_plugin, tmp_path):
    _, _, folder = trained_and_saved(points_plugin, tmp_path)
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"hidden": 16', '"hidden": 32'))
    with pytest.raises(CheckpointError) as error:
        vaekit.load(folder)
    assert str(folder / "model.safetensors") in str(error.value)
    save_file({"unrelated": torch.zeros(3)}, str(folder / "model.safetensors"))
    config.write_text(config.read_text().replace('"hidden": 32', '"hidden": 16'))
    with pytest.raises(CheckpointError, match="does not match the model"):
        vaekit.load(folder)


class _Exploit:
    """Unpickling this runs code: it writes a file wherever MARKER points."""

    marker = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pickle ran code"))


def test_a_pickle_named_model_safetensors_is_rejected_without_unpickling(points_plugin, tmp_path):
    model, _, folder = trained_and_saved(points_plugin, tmp_path)
    marker = tmp_path / "pwned.txt"
    _Exploit.marker = str(marker)
    weights = folder / "model.safetensors"
    weights.write_bytes(pickle.dumps({"payload": _Exploit(), "state": model.state_dict()}))  # payload first
    with pytest.raises(CheckpointError) as error:
        vaekit.load(folder)
    assert str(weights) in str(error.value)
    assert not marker.exists()
    torch.save(model.state_dict(), weights)  # torch's own (zip + pickle) format is refused too
    with pytest.raises(CheckpointError):
        vaekit.load(folder)


def test_save_and_load_never_call_pickle(points_plugin, tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    for target, name in [(pickle, "load"), (pickle, "loads"), (pickle, "dump"), (pickle, "dumps"),
                         (pickle, "Unpickler"), (pickle, "Pickler"), (torch, "load"), (torch, "save")]:
        monkeypatch.setattr(target, name, forbidden)
    model, _, folder = trained_and_saved(points_plugin, tmp_path)
    loaded, _ = vaekit.load(folder)
    assert torch.equal(loaded.decoder.likelihood.log_scale, model.decoder.likelihood.log_scale)


def tie(model) -> None:
    """Give the model a second name for one of its weights, as models with tied embeddings have."""
    model.tied_twin = torch.nn.Module()
    model.tied_twin.weight = next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight


def test_tied_weights_are_stored_once_and_load_under_either_name(points_plugin, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_model

    from vaekit.io.checkpoint import load_weights

    model, batch = build(points_plugin, tmp_path)
    tie(model)
    folder = vaekit.save_pretrained(model, tmp_path / "pretrained")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        stored, tied = set(f.keys()), f.metadata()
    assert len(stored) == len(model.state_dict()) - 1 and "tied_twin.weight" not in stored
    assert tied["tied_twin.weight"] in stored
    old_format = tmp_path / "old.safetensors"  # as safetensors' own save_model wrote earlier vaekit files
    save_model(model, str(old_format))
    for weights in (folder / "model.safetensors", old_format):
        fresh, _ = build(points_plugin, tmp_path / "fresh")
        tie(fresh)
        load_weights(fresh, weights, folder / "config.json")
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(fresh.state_dict()[name], tensor)
        assert fresh.tied_twin.weight is next(m for m in fresh.modules() if isinstance(m, torch.nn.Linear)).weight
