"""The plugin conformance kit: one pytest class that checks a plugin against the contract of vaekit.plugin_api.

A plugin author adds one test module to the plugin's tests (it needs pytest) and overrides a few attributes,
the smallest data and model that build in a second. examples/vaekit-points/tests/test_conformance.py:

    from vaekit.testing import PluginConformance


    class TestPointsConformance(PluginConformance):
        plugin_name = "points"                                  # the entry-point name in pyproject.toml
        data = {"source": "moons", "n_train": 64, "n_val": 16}  # the recipe's data section
        model = {"latent_dim": 2, "hidden": 8}                  # the recipe's model section: a tiny model
        subset = {"train": 32, "val": 8, "test": 8}             # examples per split (the recipe's subset)

        def example_inputs(self, folder, model):                # optional: two CLI inputs for the verbs
            path = folder / "points.csv"
            path.write_text("x,y\\n0.1,0.2\\n0.5,-0.3\\n")
            return [str(path), str(path)]

Data that lives in files is written by overriding `data_section(self, folder)`, which returns the data section
(a tiny corpus written into folder, say). `verb_options` are passed to every verb (e.g. a faster vocoder), and
`require_entry_point = False` lets a plugin registered in-process with vaekit.register_plugin run the kit.
Where several plugins' tests run in one pytest invocation, give the module a name of its own
(test_image_conformance.py): pytest cannot collect two test modules of one name outside packages.

The checks, one test each (they share one data set and one model per class):

- the entry point loads: the plugin is installed in the `vaekit.plugins` group, its object imports, is a
  vaekit Plugin and passes plugin_api.check_plugin (attributes, methods, configs that are dataclasses);
- configs parse: the sections parse into the plugin's config dataclasses through the recipe parser, and survive
  the JSON round trip a saved model's config.json makes;
- build_data returns a DataBundle whose items are dicts with "x", a JSON `info`, and batches that collate;
- the networks follow EncoderProtocol (a DiagonalGaussian per example) and DecoderProtocol (log_prob [B] nats);
- one ELBO step is finite: loss, per-example ELBO and every gradient, and the loss after an SGD step;
- save_pretrained -> vaekit.load gives the same weights, posterior, log-likelihood and decoded data;
- sample writes files (each exists, is not empty, and lies in the output folder);
- every verb the plugin does not implement raises PluginError with a one-line message; with example_inputs,
  each verb it does implement writes its files (or says in a PluginError what it cannot do).

How it calls the verbs, on the model in eval mode (gradients are not turned off), each into an output folder
that does not exist yet: sample(model, 2, None, out_dir, temperature=1.0, **verb_options);
reconstruct(model, [a, b], None, out_dir, **verb_options); interpolate(model, a, b, out_dir, steps=3,
method="linear", **verb_options); traverse(model, out_dir, input=None, dims=[0], span=1.0, steps=2,
**verb_options); load_inputs(model, [a, b]); parse_condition("0", model). a and b are the two example_inputs
(without them, "input-a" and "input-b", and only the verbs a plugin does not implement are called):
reconstruct and interpolate get the same inputs as load_inputs, so they must read the same kind of input, and
load_inputs must give exactly one example per input (two inputs, a batch of two). The plugin's own CLI options
are not passed: give them defaults.

Every failure is a ConformanceError (an AssertionError) whose one-line message names the plugin and the rule.
The Conformance class runs the same checks outside pytest.

One module of about 500 lines, on purpose: it is what a plugin author reads to learn what the kit checks, one
check after another, and `from vaekit.testing import PluginConformance` is its whole interface. Outside the
engine's layers, it imports from any of them (vaekit.plugin_api among them); no engine module imports it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from .config.reading import RecipeError, build_dataclass
from .config.recipe import parse_recipe
from .core.batch import batch_size as count_examples
from .core.distributions import DiagonalGaussian
from .io.checkpoint import CONFIG, WEIGHTS, CheckpointError
from .io.messages import one_line
from .model.vae import VAE
from .objectives.elbo import ELBO
from .plugin import DataBundle, Plugin, PluginError, get_plugin, list_plugins
from .plugin_api import check_plugin
from .runs import build_model, build_recipe_data, load

VERBS = ("sample", "reconstruct", "interpolate", "traverse", "load_inputs", "parse_condition")
RTOL, ATOL = 1e-5, 1e-6  # a reloaded model runs the same kernels on the same weights: only reordering may differ


class ConformanceError(AssertionError):
    """A plugin breaks the plugin contract; the one-line message names the plugin and the rule."""


def plugin_verbs(plugin: Plugin) -> list[str]:
    """The CLI verbs of VERBS that a plugin implements (those of Plugin its class overrides)."""
    return [verb for verb in VERBS if getattr(type(plugin), verb) is not getattr(Plugin, verb)]


def describe(exc: BaseException) -> str:
    """`TypeError: message` cut to one line."""
    return one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, 300)


class Conformance:
    """The kit's checks for one plugin, data section and model section; data and model are built once, lazily."""

    def __init__(self, plugin_name: str, data: dict, model: dict, folder: Path, *, subset: dict | None = None,
                 seed: int = 0, batch_size: int = 4, verb_options: dict | None = None,
                 require_entry_point: bool = True):
        self.plugin_name = plugin_name
        self.data_section, self.model_section = dict(data), dict(model)
        self.folder = Path(folder)
        self.subset = dict(subset or {})
        self.seed, self.batch_size = seed, batch_size
        self.verb_options = dict(verb_options or {})
        self.require_entry_point = require_entry_point
        self._cache: dict[str, Any] = {}

    # -- building, once --------------------------------------------------------------------------
    def fail(self, rule: str, cause: BaseException | None = None):
        """Raise the ConformanceError `plugin 'name': rule` (with the cause's one-line description)."""
        message = f"plugin {self.plugin_name!r}: {rule}" + (f" ({describe(cause)})" if cause is not None else "")
        raise ConformanceError(message) from cause

    @property
    def plugin(self) -> Plugin:
        if "plugin" not in self._cache:
            if not self.plugin_name:
                raise ConformanceError("set plugin_name to the plugin's entry-point name")
            try:
                self._cache["plugin"] = get_plugin(self.plugin_name)
            except PluginError as exc:
                raise ConformanceError(one_line(exc, 500)) from exc
        return self._cache["plugin"]

    @property
    def assets(self) -> Path:
        return self.folder / "assets"

    def recipe(self):
        """The recipe the trainer would read: plugin, seed, data, model and subset (configs typed by the plugin)."""
        raw = {"plugin": self.plugin_name, "seed": self.seed, "data": dict(self.data_section),
               "model": dict(self.model_section), "subset": dict(self.subset)}
        self.plugin  # noqa: B018  an unknown plugin is a one-line failure of its own, not a recipe error
        try:
            return parse_recipe(raw, f"<{self.plugin_name} conformance recipe>")
        except RecipeError as exc:
            self.fail("its data or model section does not parse", exc)

    @property
    def bundle(self) -> DataBundle:
        if "bundle" not in self._cache:
            recipe = self.recipe()
            self.assets.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(self.seed)
            try:
                bundle = build_recipe_data(self.plugin, recipe, self.assets)
            except Exception as exc:  # noqa: BLE001  the plugin's own code: report what it raised
                self.fail("build_data failed", exc)
            if not isinstance(bundle, DataBundle):
                self.fail(f"build_data returned a {type(bundle).__name__}, not a vaekit DataBundle")
            self._cache["bundle"] = bundle
        return self._cache["bundle"]

    def new_model(self) -> VAE:
        """A fresh model from the recipe's model section and the data's info, as the trainer builds it."""
        recipe, bundle = self.recipe(), self.bundle
        torch.manual_seed(self.seed)
        try:
            model = build_model(self.plugin, recipe.model, bundle.info, self.assets, recipe.latent, bundle.train)
        except Exception as exc:  # noqa: BLE001  the plugin's own code: report what it raised
            self.fail("build_model failed", exc)
        if not isinstance(model, VAE):
            self.fail(f"build_model returned a {type(model).__name__}, not a vaekit VAE")
        return model

    @property
    def model(self) -> VAE:
        if "model" not in self._cache:
            self._cache["model"] = self.new_model()
        return self._cache["model"]

    def batch(self) -> tuple[Any, torch.Tensor | None]:
        """(x, c) of the first training batch, collated as the trainer collates it."""
        train = self.bundle.train
        loader = DataLoader(train, batch_size=min(self.batch_size, len(train)), shuffle=False,
                            collate_fn=self.bundle.collate)
        try:
            batch = next(iter(loader))
        except Exception as exc:  # noqa: BLE001  the plugin's dataset and collate
            self.fail("a batch of training items does not collate", exc)
        if not isinstance(batch, Mapping) or "x" not in batch:
            self.fail(f"a collated batch is a {type(batch).__name__} without 'x'; collate must keep the items' keys")
        return batch["x"], batch.get("c")

    # -- the checks ------------------------------------------------------------------------------
    def check_entry_point(self) -> None:
        """Registered under plugin_name; its entry point imports a Plugin; check_plugin passes."""
        entries = [e for e in list_plugins() if e.name == self.plugin_name]
        if not entries:
            names = ", ".join(sorted({e.name for e in list_plugins()})) or "none"
            self.fail(f"not in the vaekit.plugins entry-point group (installed: {names}); add "
                      f'[project.entry-points."vaekit.plugins"] to pyproject.toml and pip install the package')
        installed = [e for e in entries if e.entry_point is not None]
        if self.require_entry_point and not installed:
            self.fail("registered in this process only; install it through the vaekit.plugins entry-point group")
        for entry in installed:
            try:
                found = entry.entry_point.load()
            except Exception as exc:  # noqa: BLE001  third-party import code
                self.fail(f"its entry point {entry.value} does not import", exc)
            if isinstance(found, type) and issubclass(found, Plugin):
                continue  # get_plugin makes the object
            if not isinstance(found, Plugin):
                self.fail(f"its entry point {entry.value} names a {type(found).__name__}, not a vaekit Plugin")
        try:
            check_plugin(self.plugin)
        except PluginError as exc:
            raise ConformanceError(one_line(exc, 500)) from exc

    def check_configs(self) -> None:
        """The sections parse into the plugin's dataclasses and survive config.json's JSON round trip."""
        recipe = self.recipe()
        for section, config_type in (("data", self.plugin.data_config), ("model", self.plugin.model_config)):
            value = getattr(recipe, section)
            if config_type is None:
                continue
            if not isinstance(value, config_type):
                self.fail(f"the {section} section parsed into a {type(value).__name__}, not {config_type.__name__}")
            try:
                saved = json.loads(json.dumps(dataclasses.asdict(value)))
            except (TypeError, ValueError) as exc:
                self.fail(f"its {section} config does not convert to JSON (config.json and recipe.yaml store it)",
                          exc)
            try:
                again = build_dataclass(config_type, saved, section)
            except RecipeError as exc:
                self.fail(f"its {section} config, written as JSON, does not parse again", exc)
            if json.dumps(dataclasses.asdict(again), sort_keys=True) != json.dumps(saved, sort_keys=True):
                self.fail(f"its {section} config changes when written as JSON and parsed again")

    def check_data(self) -> None:
        """Every split's items are dicts with "x"; info is JSON; lengths match train; batches collate."""
        bundle = self.bundle
        if bundle.train is None or len(bundle.train) == 0:
            self.fail("build_data gave no training examples")
        for split in ("train", "val", "test"):
            dataset = getattr(bundle, split)
            if dataset is None or len(dataset) == 0:
                continue
            try:
                item = dataset[0]
            except Exception as exc:  # noqa: BLE001  the plugin's dataset
                self.fail(f"the {split} split's first item cannot be read", exc)
            if not isinstance(item, Mapping) or "x" not in item:
                self.fail(f"the {split} split's items must be dicts with 'x' (and optionally 'c'), got "
                          f"{type(item).__name__}" + (f" with keys {sorted(item)}" if isinstance(item, Mapping)
                                                      else ""))
        try:
            json.dumps(bundle.info)
        except (TypeError, ValueError) as exc:
            self.fail("DataBundle.info must be JSON (it is saved in every config.json)", exc)
        if bundle.lengths is not None and len(bundle.lengths) != len(bundle.train):
            self.fail(f"DataBundle.lengths has {len(bundle.lengths)} entries for {len(bundle.train)} training examples")
        x, _ = self.batch()
        expected = min(self.batch_size, len(bundle.train))
        try:
            found = count_examples(x)
        except Exception as exc:  # noqa: BLE001  an x with no tensor in it
            self.fail("a batch's x holds no tensor (x is a tensor or a dict of tensors)", exc)
        if found != expected:
            self.fail(f"a batch of {expected} items collated to an x of {found} examples")

    def check_networks(self) -> None:
        """The encoder returns a DiagonalGaussian per example; the decoder's log_prob is [B] finite nats."""
        model = self.model.train()
        x, c = self.batch()
        n = count_examples(x)
        try:
            posterior = model.posterior(x, c)
        except Exception as exc:  # noqa: BLE001  the plugin's encoder
            self.fail("its encoder(x, c) failed on a training batch", exc)
        if not isinstance(posterior, DiagonalGaussian):
            self.fail(f"its encoder returned a {type(posterior).__name__}; EncoderProtocol: (x, c=None) -> "
                      "DiagonalGaussian")
        if posterior.mean.shape[0] != n:
            self.fail(f"its encoder's posterior has batch size {posterior.mean.shape[0]} for {n} examples")
        z = posterior.rsample()
        try:
            log_prob = model.log_likelihood(x, z, c)
        except Exception as exc:  # noqa: BLE001  the plugin's decoder
            self.fail("its decoder.log_prob(x, z, c) failed on a training batch", exc)
        if not torch.is_tensor(log_prob) or tuple(log_prob.shape) != (n,):
            shape = list(log_prob.shape) if torch.is_tensor(log_prob) else type(log_prob).__name__
            self.fail(f"its decoder.log_prob returned {shape}; DecoderProtocol: log p(x|z, c) per example, [{n}]")
        if not torch.isfinite(log_prob).all():
            self.fail("its decoder.log_prob is not finite on a training batch")
        with torch.no_grad():
            try:
                model.eval().decode(posterior.mode(), c)
            except Exception as exc:  # noqa: BLE001  the plugin's decoder
                self.fail("its decoder.generate(z, c) failed on a batch of posterior means", exc)

    def check_elbo_step(self) -> None:
        """One ELBO step on a fresh model: finite loss, ELBO and gradients, and a finite loss after an SGD step."""
        model = self.new_model().train()
        x, c = self.batch()
        for step in range(2):
            try:
                terms = model(x, c, objective=ELBO())
            except Exception as exc:  # noqa: BLE001  the plugin's networks
                self.fail("the ELBO of a training batch cannot be computed", exc)
            if terms.loss.dim() != 0 or not torch.isfinite(terms.loss):
                when = "after one SGD step" if step else "on a fresh model"
                self.fail(f"the ELBO loss is {terms.loss.tolist()} {when}; expected a finite scalar")
            if not torch.isfinite(terms.elbo).all():
                self.fail("the per-example ELBO is not finite")
            if step:
                return
            terms.loss.backward()
            grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
            if not grads:
                self.fail("no parameter received a gradient from the ELBO")
            bad = [name for name, grad in grads.items() if not torch.isfinite(grad).all()]
            if bad:
                self.fail(f"the ELBO's gradient is not finite in {', '.join(bad[:3])}")
            with torch.no_grad():  # a plain SGD step: creating a torch optimizer imports torch._dynamo (seconds)
                for parameter in model.parameters():
                    if parameter.grad is not None:
                        parameter.sub_(1e-3 * parameter.grad)

    def check_round_trip(self, folder: Path) -> None:
        """save_pretrained -> vaekit.load: the same weights (bitwise), posterior, log-likelihood and decoded data."""
        model = self.new_model()
        with torch.no_grad():  # move every weight off its initial value, so a load that kept fresh weights fails
            generator = torch.Generator().manual_seed(self.seed + 1)
            for parameter in model.parameters():
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
                parameter.add_(0.01 * noise.to(parameter.dtype))
        model.eval()
        folder = Path(folder) / "pretrained"
        try:
            model.save_pretrained(folder)
        except (CheckpointError, TypeError, ValueError) as exc:
            self.fail("save_pretrained failed", exc)
        for name in (WEIGHTS, CONFIG):
            if not (folder / name).is_file():
                self.fail(f"save_pretrained wrote no {name}")
        try:
            loaded, plugin = load(folder)
        except CheckpointError as exc:
            self.fail("vaekit.load cannot read what save_pretrained wrote", exc)
        if plugin.name != self.plugin_name:
            self.fail(f"vaekit.load found plugin {plugin.name!r} in config.json")
        saved, again = model.state_dict(), loaded.state_dict()
        if sorted(saved) != sorted(again):
            self.fail(f"the loaded model's weights are named differently: {sorted(set(saved) ^ set(again))[:3]}")
        changed = [name for name in saved if not torch.equal(saved[name].cpu(), again[name].cpu())]
        if changed:
            self.fail(f"the loaded weights differ from the saved ones in {', '.join(changed[:3])}")
        x, c = self.batch()
        with torch.no_grad():
            before, after = model.posterior(x, c), loaded.posterior(x, c)
            self.same("posterior mean", before.mean, after.mean)
            self.same("posterior log-variance", before.logvar, after.logvar)
            z = before.mode()
            self.same("log p(x|z)", model.log_likelihood(x, z, c), loaded.log_likelihood(x, z, c))
            torch.manual_seed(self.seed)
            decoded = model.decode(z, c)
            torch.manual_seed(self.seed)
            self.same("decoded data", decoded, loaded.decode(z, c))

    def same(self, what: str, a: Any, b: Any) -> None:
        """Fail unless a and b (tensors, or dicts / lists of them) are equal within RTOL, ATOL."""
        if torch.is_tensor(a) and torch.is_tensor(b):
            if a.shape != b.shape:
                self.fail(f"after save_pretrained and vaekit.load, the {what} has shape {list(b.shape)}, "
                          f"not {list(a.shape)}")
            if not torch.allclose(a.double(), b.double(), rtol=RTOL, atol=ATOL, equal_nan=True):
                gap = (a.double() - b.double()).abs().nan_to_num(math.inf).max().item()
                self.fail(f"after save_pretrained and vaekit.load, the {what} differs (by up to {gap:.3g})")
        elif isinstance(a, Mapping) and isinstance(b, Mapping):
            if sorted(a) != sorted(b):
                self.fail(f"after save_pretrained and vaekit.load, the {what} has keys {sorted(b)}, not {sorted(a)}")
            for key in a:
                self.same(f"{what} [{key!r}]", a[key], b[key])
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
            for i, (left, right) in enumerate(zip(a, b, strict=True)):
                self.same(f"{what} [{i}]", left, right)
        elif a != b:
            self.fail(f"after save_pretrained and vaekit.load, the {what} differs")

    def check_files(self, verb: str, files: Any, out_dir: Path) -> None:
        """A verb returned a non-empty list of files that exist, are not empty and lie in out_dir."""
        if not isinstance(files, Sequence) or isinstance(files, (str, bytes)) or not files:
            self.fail(f"{verb} must return the list of files it wrote, got {files!r:.100}")
        root = Path(out_dir).resolve()
        for path in files:
            path = Path(path)
            if not path.is_file() or path.stat().st_size == 0:
                self.fail(f"{verb} returned {path}, which is missing or empty")
            if not path.resolve().is_relative_to(root):
                self.fail(f"{verb} wrote {path} outside its output folder {out_dir}")

    def check_sample(self, folder: Path) -> None:
        """sample(model, 2, None, out_dir, temperature=1.0) writes files into out_dir."""
        if "sample" not in plugin_verbs(self.plugin):
            pytest.skip(f"plugin {self.plugin_name!r} does not implement sample")
        out_dir = Path(folder) / "sample"
        torch.manual_seed(self.seed)
        try:
            files = self.plugin.sample(self.model.eval(), 2, None, out_dir, temperature=1.0, **self.verb_options)
        except Exception as exc:  # noqa: BLE001  the plugin's own code: report what it raised
            self.fail("sample failed on an untrained model", exc)
        self.check_files("sample", files, out_dir)

    def check_verbs(self, folder: Path, inputs: list[str] | None = None) -> None:
        """Verbs not implemented raise a one-line PluginError; with inputs, implemented ones write their files."""
        model, plugin = self.model.eval(), self.plugin
        implemented = plugin_verbs(plugin)
        out_dir = Path(folder)
        a, b = (list(inputs) * 2)[:2] if inputs else ("input-a", "input-b")
        calls = {
            "sample": lambda: plugin.sample(model, 2, None, out_dir / "sample", temperature=1.0,
                                            **self.verb_options),
            "reconstruct": lambda: plugin.reconstruct(model, [a, b], None, out_dir / "reconstruct",
                                                      **self.verb_options),
            "interpolate": lambda: plugin.interpolate(model, a, b, out_dir / "interpolate", steps=3,
                                                      method="linear", **self.verb_options),
            "traverse": lambda: plugin.traverse(model, out_dir / "traverse", input=None, dims=[0], span=1.0,
                                                steps=2, **self.verb_options),
            "load_inputs": lambda: plugin.load_inputs(model, [a, b]),
            "parse_condition": lambda: plugin.parse_condition("0", model),
        }
        for verb in VERBS:
            if verb not in implemented:
                try:
                    calls[verb]()
                except PluginError as exc:
                    if "\n" in str(exc) or not str(exc).strip():
                        self.fail(f"{verb}'s PluginError must be one line, got {str(exc)[:100]!r}")
                    continue
                except Exception as exc:  # noqa: BLE001  what a plugin raises instead
                    self.fail(f"{verb}, which it does not implement, must raise vaekit.PluginError", exc)
                self.fail(f"{verb}, which it does not implement, returned without raising vaekit.PluginError")
        if inputs is None:
            return
        for verb in ("reconstruct", "interpolate", "traverse", "load_inputs"):
            if verb not in implemented:
                continue
            torch.manual_seed(self.seed)
            try:
                result = calls[verb]()
            except PluginError as exc:
                if "\n" in str(exc):
                    self.fail(f"{verb}'s PluginError must be one line, got {str(exc)[:100]!r}")
                continue  # the plugin says what it cannot do with this model: the contract
            except NotImplementedError as exc:
                self.fail(f"{verb} raised NotImplementedError; a verb a plugin cannot do raises vaekit.PluginError",
                          exc)
            except Exception as exc:  # noqa: BLE001  the plugin's own code: report what it raised
                self.fail(f"{verb} failed on the example inputs", exc)
            if verb == "load_inputs":
                with torch.no_grad():
                    try:
                        posterior = model.posterior(result, None)
                    except Exception as exc:  # noqa: BLE001  a batch the encoder cannot read
                        self.fail("load_inputs gave a batch the encoder cannot read", exc)
                if posterior.mean.shape[0] != 2:
                    self.fail(f"load_inputs of 2 inputs gave a batch of {posterior.mean.shape[0]}")
            else:
                self.check_files(verb, result, out_dir / verb)


class PluginConformance:
    """Subclass as `TestXConformance` and set plugin_name, data, model (and subset): see the module docstring."""

    plugin_name: str = ""
    data: dict = {}
    model: dict = {}
    subset: dict = {"train": 16, "val": 8, "test": 8}
    seed: int = 0
    batch_size: int = 4
    verb_options: dict = {}
    require_entry_point: bool = True

    def data_section(self, folder: Path) -> dict:
        """The recipe's data section; override to write data files into folder first."""
        return dict(self.data)

    def example_inputs(self, folder: Path, model: VAE) -> list[str] | None:
        """Two CLI inputs (files, or sentences for text) for reconstruct, interpolate and load_inputs; None: skip."""
        return None

    @pytest.fixture(scope="class")
    @classmethod
    def conformance(cls, tmp_path_factory) -> Conformance:
        """One Conformance per test class: its data and model are built once, by the first check that needs them."""
        folder = tmp_path_factory.mktemp(f"conformance-{cls.plugin_name or 'plugin'}")
        return Conformance(cls.plugin_name, cls().data_section(folder), cls.model, folder, subset=cls.subset,
                           seed=cls.seed, batch_size=cls.batch_size, verb_options=cls.verb_options,
                           require_entry_point=cls.require_entry_point)

    def test_entry_point_loads(self, conformance):
        conformance.check_entry_point()

    def test_configs_parse(self, conformance):
        conformance.check_configs()

    def test_build_data_gives_items_with_x(self, conformance):
        conformance.check_data()

    def test_networks_follow_the_protocols(self, conformance):
        conformance.check_networks()

    def test_one_elbo_step_is_finite(self, conformance):
        conformance.check_elbo_step()

    def test_save_pretrained_then_load_gives_equal_outputs(self, conformance, tmp_path):
        conformance.check_round_trip(tmp_path)

    def test_sample_writes_files(self, conformance, tmp_path):
        conformance.check_sample(tmp_path)

    def test_verbs_write_files_or_raise_plugin_error(self, conformance, tmp_path):
        inputs_folder = tmp_path / "inputs"
        inputs_folder.mkdir()
        conformance.check_verbs(tmp_path, self.example_inputs(inputs_folder, conformance.model))
