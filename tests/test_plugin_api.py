"""vaekit.plugin_api (what plugins import, the network Protocols, check_plugin) and the conformance kit of
vaekit.testing: it passes a sound plugin and fails, in one line naming the rule, each deliberately broken one."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest
import torch
from helpers_toy_plugin import PLUGIN_NAME, PointsData, PointsDataset, PointsDecoder, PointsModel, PointsPlugin
from torch import nn

import vaekit
import vaekit.plugin
from vaekit import plugin_api
from vaekit.testing import Conformance, ConformanceError, PluginConformance, plugin_verbs

pytest_plugins = ["pytester"]

DATA = {"n_points": 32}
MODEL = {"latent_dim": 2, "hidden": 8}


@pytest.fixture
def registry(monkeypatch):
    """The plugin registry as it was, restored after the test; returns a function that registers a plugin."""
    monkeypatch.setattr(vaekit.plugin, "_registered", dict(vaekit.plugin._registered))
    monkeypatch.setattr(vaekit.plugin, "_loaded", dict(vaekit.plugin._loaded))

    def register(plugin_class: type[PointsPlugin]) -> PointsPlugin:
        plugin = plugin_class()
        vaekit.register_plugin(plugin)
        return plugin

    return register


def kit(tmp_path: Path) -> Conformance:
    return Conformance(PLUGIN_NAME, DATA, MODEL, tmp_path, batch_size=4, require_entry_point=False)


def points_file(folder: Path) -> list[str]:
    """Two CLI inputs for the toy plugin: a CSV file of points, twice."""
    path = folder / "points.csv"
    path.write_text("0.1,0.2\n0.5,-0.3\n")
    return [str(path), str(path)]


# -- deliberately broken plugins: each breaks one rule of the contract -------------------------------

class ItemsWithoutX(PointsPlugin):
    def build_data(self, data, *, seed, assets):
        bundle = super().build_data(data, seed=seed, assets=assets)
        bundle.train = [{"points": item["x"]} for item in bundle.train]
        return bundle


class NanDecoder(PointsDecoder):
    def log_prob(self, x, z, c=None):
        return super().log_prob(x, z, c) * torch.tensor(float("nan"))


class NanLikelihood(PointsPlugin):
    def build_model(self, model, info, *, assets):
        vae = super().build_model(model, info, assets=assets)
        vae.decoder = NanDecoder(model, None, torch.zeros(2))
        return vae


class PerDimensionDecoder(PointsDecoder):
    def log_prob(self, x, z, c=None):
        return -(self.mean(z, c) - x) ** 2  # [B, 2]: not summed over the data's dimensions


class PerDimensionLikelihood(PointsPlugin):
    def build_model(self, model, info, *, assets):
        vae = super().build_model(model, info, assets=assets)
        vae.decoder = PerDimensionDecoder(model, None, torch.zeros(2))
        return vae


class UnsavedCenter(PointsPlugin):
    """Draws the encoder's centring offset at random in build_model and keeps it nowhere."""

    def build_model(self, model, info, *, assets):
        vae = super().build_model(model, info, assets=assets)
        vae.encoder.center = torch.randn(2)
        return vae


class SampleWritesNothing(PointsPlugin):
    def sample(self, model, n, condition, out_dir, **options):
        return [Path(out_dir) / "samples.csv"]


class ReconstructNotImplemented(PointsPlugin):
    def reconstruct(self, model, inputs, condition, out_dir, **options):
        raise NotImplementedError


class InterpolateReturnsNothing(PointsPlugin):
    def interpolate(self, model, a, b, out_dir, **options):
        return None


@dataclasses.dataclass
class DeviceModel(PointsModel):
    device: object = dataclasses.field(default_factory=lambda: torch.device("cpu"))


class ConfigNotJson(PointsPlugin):
    model_config = DeviceModel


# -- plugin_api -----------------------------------------------------------------------------------------

def test_plugin_api_exports_the_engine_objects_themselves():
    for name in plugin_api.__all__:
        assert hasattr(plugin_api, name), name
    assert plugin_api.Plugin is vaekit.Plugin and plugin_api.DataBundle is vaekit.DataBundle
    assert plugin_api.PluginError is vaekit.PluginError and plugin_api.VAE is vaekit.VAE
    assert plugin_api.DiagonalGaussian is vaekit.DiagonalGaussian


def test_plugin_api_exports_every_engine_name_the_shipped_plugins_import():
    repo = Path(__file__).resolve().parent.parent
    sources = sorted(repo.glob("plugins/*/vaekit_*/*.py")) + sorted(repo.glob("examples/*/vaekit_*/*.py"))
    assert len(sources) > 20
    missing = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vaekit":
                missing |= {f"{node.module}.{a.name}" for a in node.names if a.name not in plugin_api.__all__}
    assert not missing, sorted(missing)


def test_the_toy_networks_follow_the_protocols_and_a_bare_layer_is_no_decoder():
    vae = PointsPlugin().build_model(PointsModel(), {"num_classes": 3}, assets=Path("/nonexistent"))
    assert isinstance(vae.encoder, plugin_api.EncoderProtocol)
    assert isinstance(vae.decoder, plugin_api.DecoderProtocol)
    assert not isinstance(nn.Linear(2, 2), plugin_api.DecoderProtocol)


def test_check_plugin_passes_every_shipped_plugin_and_the_toy():
    plugin_api.check_plugin(PointsPlugin())
    for name in ("image", "text", "speech"):
        plugin_api.check_plugin(vaekit.get_plugin(name))


class NotDataclass:
    n_points: int = 3


class DataNotDataclass(PointsPlugin):
    data_config = NotDataclass


class NoBuildModel(vaekit.Plugin):
    name = "no_build_model"
    data_config, model_config = PointsData, PointsModel

    def build_data(self, data, *, seed, assets):
        return vaekit.DataBundle(PointsDataset(torch.zeros(4, 2), torch.zeros(4)), None, None)


class SubsetNotTaken(PointsPlugin):
    takes_subset = True


class BadCommand(PointsPlugin):
    def commands(self):
        return {"warp": print}


@pytest.mark.parametrize(("plugin", "message"), [
    (PointsPlugin, "is a class; give the plugin object, PointsPlugin()"),
    (object(), "a object is not a plugin: subclass vaekit.plugin_api.Plugin"),
    (DataNotDataclass(), "data_config must be a dataclass type"),
    (NoBuildModel(), "build_model is not implemented"),
    (SubsetNotTaken(), "build_data must take the keyword 'subset' (takes_subset is True)"),
    (BadCommand(), "commands()['warp'] must be a pair"),
])
def test_check_plugin_names_what_a_broken_plugin_lacks_in_one_line(plugin, message):
    with pytest.raises(vaekit.PluginError) as caught:
        plugin_api.check_plugin(plugin)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# -- the conformance kit --------------------------------------------------------------------------------

def test_the_kit_passes_the_toy_plugin(registry, tmp_path):
    registry(PointsPlugin)
    checks = kit(tmp_path / "kit")
    checks.check_entry_point()
    checks.check_configs()
    checks.check_data()
    checks.check_networks()
    checks.check_elbo_step()
    checks.check_round_trip(tmp_path / "round-trip")
    checks.check_verbs(tmp_path / "verbs", points_file(tmp_path))
    assert plugin_verbs(PointsPlugin()) == []


@pytest.mark.parametrize(("broken", "check", "message"), [
    (ItemsWithoutX, "check_data", "the train split's items must be dicts with 'x'"),
    (NanLikelihood, "check_elbo_step", "the ELBO loss is nan on a fresh model; expected a finite scalar"),
    (PerDimensionLikelihood, "check_networks", "its decoder.log_prob returned [4, 2]; DecoderProtocol"),
    (UnsavedCenter, "check_round_trip", "after save_pretrained and vaekit.load, the posterior mean differs"),
    (SampleWritesNothing, "check_sample", "which is missing or empty"),
    (ReconstructNotImplemented, "check_verbs", "reconstruct raised NotImplementedError; a verb a plugin cannot do "
                                               "raises vaekit.PluginError"),
    (InterpolateReturnsNothing, "check_verbs", "interpolate must return the list of files it wrote, got None"),
    (ConfigNotJson, "check_configs", "its model config does not convert to JSON"),
])
def test_the_kit_fails_a_broken_plugin_in_one_line_naming_the_rule(registry, tmp_path, broken, check, message):
    registry(broken)
    checks = kit(tmp_path / "kit")
    with pytest.raises(ConformanceError) as caught:
        if check == "check_verbs":
            checks.check_verbs(tmp_path / "verbs", points_file(tmp_path))
        elif check in ("check_round_trip", "check_sample"):
            getattr(checks, check)(tmp_path / "out")
        else:
            getattr(checks, check)()
    assert str(caught.value).startswith(f"plugin {PLUGIN_NAME!r}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_plugin_registered_in_process_is_no_installed_plugin(registry, tmp_path):
    registry(PointsPlugin)
    checks = Conformance(PLUGIN_NAME, DATA, MODEL, tmp_path)
    with pytest.raises(ConformanceError, match="registered in this process only; install it through the "
                                               "vaekit.plugins entry-point group"):
        checks.check_entry_point()


def test_an_unknown_plugin_name_is_one_line(tmp_path):
    with pytest.raises(ConformanceError) as caught:
        Conformance("no_such_plugin", {}, {}, tmp_path).check_entry_point()
    assert str(caught.value).startswith("plugin 'no_such_plugin': not in the vaekit.plugins entry-point group "
                                        "(installed: ")
    assert "\n" not in str(caught.value)


def test_a_subclass_of_the_pytest_class_reports_each_broken_rule_as_a_failed_test(registry, pytester):
    registry(UnsavedCenter)
    pytester.makepyfile(test_broken=textwrap.dedent(f"""
        from vaekit.testing import PluginConformance


        class TestBrokenConformance(PluginConformance):
            plugin_name = {PLUGIN_NAME!r}
            data = {DATA!r}
            model = {MODEL!r}
            require_entry_point = False
    """))
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    # the toy plugin has no sample verb: that test is skipped
    result.assert_outcomes(passed=len(kit_tests()) - 2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*test_save_pretrained_then_load_gives_equal_outputs*",
                                 "*ConformanceError: plugin 'enginetest_points': after save_pretrained and "
                                 "vaekit.load, the posterior mean differs*"])


def kit_tests() -> list[str]:
    """The names of the pytest class's tests."""
    return [name for name in dir(PluginConformance) if name.startswith("test_")]
