"""The plugin contract and plugin discovery through the `vaekit.plugins` entry-point group.

A modality is a package whose pyproject names an object of a Plugin subclass:

    [project.entry-points."vaekit.plugins"]
    points = "vaekit_points:plugin"

Listing reads entry-point metadata only; a plugin's code is imported when it is first used, and
one that fails to import is reported with its error without breaking the others.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from .io.messages import one_line
from .io.safe_writes import atomic_write_text
from .model.vae import VAE

ENTRY_POINT_GROUP = "vaekit.plugins"


class PluginError(Exception):
    """A plugin is missing, broken, ambiguous or does not support what was asked."""


@dataclass
class DataBundle:
    """What a plugin's build_data returns: the splits and the facts the model is built from.

    Each dataset item is one example, unbatched, as CPU tensors: a dict with "x" (a tensor or a dict of tensors)
    and optionally "c" (the condition) and "label" (an integer class as a 0-d tensor, which `vaekit encode
    --split` colours its map by). `collate` batches them (torch's default_collate when None); the engine moves
    each batch to the model's device. `val` and `test` may be None: without `val` a run neither evaluates nor
    writes samples while it trains (and trainer.keep_best is refused); without the split `vaekit eval` (or
    `encode --split`) asks for, that command stops with one line. An empty split (0 items) that a run evaluates
    is an error before training. `info` must be JSON: it is saved with every checkpoint so build_model can
    rebuild the model without the data. `lengths` (one size per training example, e.g. tokens) lets
    trainer.bucket_batches group examples of similar length. `skipped` lists the data files left out
    (data.skip_bad_files), one "path: reason" each: the trainer announces them in one line and writes them to
    the run folder.
    """

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    info: dict[str, Any] = field(default_factory=dict)
    collate: Callable | None = None
    lengths: Sequence[int] | None = None
    skipped: list[str] = field(default_factory=list)


DEMO_KINDS = ("image", "text", "audio", "table", "file")


@dataclass(frozen=True)
class DemoKinds:
    """What `vaekit demo` shows for a plugin: the kind of its verbs' inputs and of the files they write.

    input: image (an uploaded picture), text (a typed sentence, given to the verbs as a .txt file of one line),
    audio (a file or the microphone), table (rows of numbers typed into a box, given as a .csv file) or file (any
    upload). output: the same kinds; the demo shows each file a verb writes by its suffix (PNG/JPEG as images,
    .txt as text, .wav as audio, .csv as a table), and every file is offered for download.
    """

    input: str = "file"
    output: str = "file"


class Plugin:
    """Base class of a modality. Subclasses set the attributes and implement the methods they support.

    Files a plugin must keep with the model (a tokenizer, say) go in `assets`, a folder that travels
    with every run and every save_pretrained; build_model receives it back. A plugin with nothing to keep
    takes the `assets` keyword and ignores it.

    `name` is replaced by the entry-point name when the plugin is loaded (recipes and checkpoints record that
    one). `description` is a one-line summary for people who read the plugin or list plugins from Python
    (`vaekit.get_plugin(name).description`); check_plugin requires a string. `vaekit plugins` does not show it:
    it lists each plugin's name, distribution, version and whether it imports.

    The CLI verbs get a model from vaekit.load: on the --device given, in eval mode, with gradients enabled
    (VAE.sample and VAE.reconstruct turn them off themselves; decorate a verb with @torch.no_grad() when it
    calls encode or decode). out_dir may not exist yet: vaekit.plugin_api.atomic_open creates missing parent
    folders. A verb returns the files it wrote, all inside out_dir.
    """

    name: str = ""
    description: str = ""
    data_config: type | None = None  # dataclass type checked against the recipe's `data` section
    model_config: type | None = None  # dataclass type checked against the recipe's `model` section
    # True: build_data takes a `subset` keyword (the recipe's subset section) and cuts its lists with
    # vaekit.config.subsets.pick before its costly work; False: the engine cuts the datasets it returns.
    takes_subset: bool = False
    demo_kinds: DemoKinds = DemoKinds()  # the widgets of `vaekit demo`; the default offers uploads and downloads

    # -- required -------------------------------------------------------------------------------
    def build_data(self, data: Any, *, seed: int, assets: Path) -> DataBundle:
        """Datasets for train / val / test from the recipe's data section (a data_config instance).

        Runs when a run trains and again for `vaekit eval`, `encode --split` and a fitted sampler (from the run's
        recipe.yaml). A value chosen from the data is recorded by setting it on `data` (a field left None in the
        recipe, say): the trainer writes recipe.yaml after build_data and build_model. What build_model needs
        from the data goes in DataBundle.info, since a loaded model is built without the data.
        """
        raise NotImplementedError

    def build_model(self, model: Any, info: dict, *, assets: Path) -> VAE:
        """The VAE from the recipe's model section and the data facts build_data put in info.

        Runs when a run trains and at every vaekit.load, from config.json's "model" and "info": everything the
        verbs need later must be rebuilt here (kept on the decoder, say) or read from model.config["info"]. A
        value chosen here is recorded by setting it on `model` (recipe.yaml and config.json store the section
        after this call).
        """
        raise NotImplementedError

    # -- what people do with a trained model (CLI verbs); each writes files and returns them ------
    def add_arguments(self, verb: str, parser) -> None:
        """Add plugin options to the argparse parser of `sample`, `reconstruct`, `interpolate`, `traverse`, `eval`.

        The CLI passes every option it adds to the verb as a keyword (by its dest, with its default when not
        given); the trainer and the conformance kit do not, so each needs a default in the verb's signature.
        The engine's own options (--temperature, --steps, --method, --input, --dims, --span, ...) cannot be added
        again: that is a PluginError. (`encode` calls this too, but passes no options to load_inputs.)
        """

    def parse_condition(self, text: str, model: VAE) -> Tensor:
        """Turn `--condition TEXT` into the model's condition tensor [1, ...] (a label, speaker=...).

        The CLI calls it only when --condition is given (sample and reconstruct take it) and moves the result to
        the model's device; without --condition the verb gets condition=None. This default raises PluginError,
        so a plugin without conditions needs no check of its own; one that overrides it raises PluginError for
        a model that takes no condition, and ValueError for text that names no condition.
        """
        raise PluginError(f"plugin {self.name!r} does not take conditions")

    def condition_choices(self, model: VAE) -> list[str]:
        """The --condition texts a person can pick for this model (class names, `speaker=NAME`), for `vaekit demo`.

        [] (the default) for a model without a condition, or one whose conditions are not a short list.
        """
        return []

    def demo_verbs(self, model: VAE) -> list[str]:
        """The verbs of commands() that this model can run, each a tab of `vaekit demo` (default: all of them).

        A verb that needs a kind of model (super-resolution needs a low-resolution condition) is left out for
        the others, so the page offers only what works.
        """
        return list(self.commands())

    def sample(self, model: VAE, n: int, condition: Tensor | None, out_dir: Path, **options) -> list[Path]:
        """Draw n samples and write them as files people open (PNG grid, .txt, .wav); options carry the CLI's
        temperature= (the scale of the latents' spread) and the plugin's own options.

        `vaekit sample` always passes temperature= (default 1.0). Training also calls it at every evaluation (a
        run with a val split) as sample(model, trainer.samples, None, RUN/samples/step-N), no other keyword, under
        torch.no_grad() and model.eval(): keep it cheap, and give temperature a default (1.0). The conformance
        kit passes temperature=1.0 and its verb_options.
        """
        raise PluginError(f"plugin {self.name!r} does not support sample")

    def reconstruct(self, model: VAE, inputs: list[str], condition: Tensor | None, out_dir: Path,
                    **options) -> list[Path]:
        """Encode and decode the given inputs (file paths or text); write input beside output.

        Takes the inputs load_inputs reads (the kit passes both the same example inputs); no engine options.
        """
        raise PluginError(f"plugin {self.name!r} does not support reconstruct")

    def interpolate(self, model: VAE, a: str, b: str, out_dir: Path, **options) -> list[Path]:
        """Decode points on the latent path between inputs a and b; write them. options carry the CLI's steps=
        (points, both ends included) and method= (linear or slerp): see vaekit.latent_path.

        a and b are inputs as load_inputs reads them. `vaekit interpolate` always passes steps= (default 8) and
        method= (default "linear"); the kit passes steps=3, method="linear".
        """
        raise PluginError(f"plugin {self.name!r} does not support interpolate")

    def traverse(self, model: VAE, out_dir: Path, input: str | None = None, dims: str | list[int] | None = None,
                 span: float = 3.0, steps: int = 9, **options) -> list[Path]:
        """Decode vaekit.plugin_api.traversal around a base point; write it.

        With input, the base is that input's posterior mean (model.encode(x).mode()[0]); without, the plugin
        chooses: the prior's mean (model.sample_latents(1, c, temperature=0.0)[0]: text, speech) or the
        posterior mean of an example of the run's data (image). `vaekit traverse` always passes input= (None
        without --input), dims= (the --dims text, "0,1", or None), span= and steps=; the kit passes input=None,
        dims=[0], span=1.0, steps=2. vaekit.plugin_api.parse_dims reads dims in all three forms.
        """
        raise PluginError(f"plugin {self.name!r} does not support traverse")

    def load_inputs(self, model: VAE, inputs: list[str]):
        """Files (or sentences, for text) -> one model-ready batch x on the model's device (`vaekit encode`).

        One example per input, in order: the conformance kit checks that its two example inputs give a batch of
        two, and `vaekit encode` labels codes by their inputs' folders only when it gets one code per input. An
        input that holds several examples may give several (text: a .txt file, one sentence per line). encode
        calls it with up to 256 inputs at a time; no options are passed.
        """
        raise PluginError(f"plugin {self.name!r} does not read input files; encode a data split with --split")

    def eval_metrics(self, model: VAE, loader, summary: dict[str, float], **options) -> dict[str, float]:
        """Modality metrics (bits/dim, perplexity, ...) from the engine's summary and the eval data.

        options are the plugin's `vaekit eval` flags, the recipe's eval.options standing in for those not given.
        """
        return {}

    def batch_amounts(self, batch: dict, info: dict) -> dict[str, Tensor]:
        """How much of the modality a training batch holds, by name (speech: {"audio_seconds": ...}), as tensors
        left where the batch is; `vaekit train` sums each over a train record's steps into that record of
        metrics.jsonl. Called on every step: keep it to a sum, with no copy to the CPU."""
        return {}

    def commands(self) -> dict[str, tuple[Callable, Callable]]:
        """Extra CLI verbs: name -> (add_arguments(parser), run(model, plugin, args) -> list[Path]).

        args also holds the engine's run, device and seed; run's docstring is the verb's --help description.
        """
        return {}


@dataclass
class PluginEntry:
    """One registered plugin as the entry-point metadata describes it (nothing imported)."""

    name: str
    value: str
    distribution: str
    version: str
    entry_point: importlib.metadata.EntryPoint | None = None


_registered: dict[str, Plugin] = {}  # plugins registered in-process (tests, notebooks)
_loaded: dict[str, Plugin] = {}


def register_plugin(plugin: Plugin) -> None:
    """Make a Plugin object available by name in this process without installing a package."""
    if not plugin.name:
        raise PluginError("a plugin needs a name")
    _registered[plugin.name] = plugin


def list_plugins() -> list[PluginEntry]:
    """Every plugin registered through entry points or register_plugin, without importing any."""
    entries: dict[tuple[str, str, str], PluginEntry] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        # An editable install can list the same entry point twice: keep one per (name, target, dist).
        entries.setdefault((ep.name, ep.value, dist), PluginEntry(ep.name, ep.value, dist, version, ep))
    found = list(entries.values())
    for plugin in _registered.values():
        found.append(PluginEntry(plugin.name, type(plugin).__module__, "(registered in process)", "-"))
    return sorted(found, key=lambda e: e.name)


def get_plugin(name: str) -> Plugin:
    """Import and return the plugin called name; clear errors for unknown, duplicate or broken ones."""
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
    entries = list_plugins()
    matches = [e for e in entries if e.name == name]
    if not matches:
        installed = ", ".join(sorted({e.name for e in entries})) or "none"
        raise PluginError(f"unknown plugin {name!r}; installed plugins: {installed}")
    if len(matches) > 1:
        owners = " and ".join(f"{e.distribution} ({e.value})" for e in matches)
        raise PluginError(f"plugin name {name!r} is registered twice, by {owners}; uninstall one of them")
    entry = matches[0]
    try:
        plugin = entry.entry_point.load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001  third-party import code may even call sys.exit: report it
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise PluginError(f"plugin {name!r} from {entry.distribution} failed to import: "
                          f"{one_line(detail, 300)}") from exc
    if isinstance(plugin, type):
        try:
            plugin = plugin()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001  a constructor is third-party code too
            raise PluginError(f"plugin {name!r} ({entry.value}) failed to start: {type(exc).__name__}: "
                              f"{one_line(exc, 300)}") from None
    if not isinstance(plugin, Plugin):
        raise PluginError(f"plugin {name!r} ({entry.value}) is a {type(plugin).__name__}, not a vaekit.Plugin")
    plugin.name = name  # the entry-point name is what recipes and checkpoints record and look up again
    _loaded[name] = plugin
    return plugin


SKIPPED_FILES = "skipped-files.txt"


def name_files(files: Sequence[str], shown: int = 3) -> str:
    """`a.wav, b.wav, c.wav and 7 more`: the first few of a list of files for a one-line message."""
    names = [str(f) for f in files[:shown]]
    more = f" and {len(files) - shown} more" if len(files) > shown else ""
    return ", ".join(names) + more


def report_skipped(data: DataBundle, run_dir: Path | None) -> Path | None:
    """Print one line about the data files a plugin skipped; with a run_dir, list them all in RUN/skipped-files.txt."""
    if not data.skipped:
        return None
    listing = None
    if run_dir is not None:
        listing = Path(run_dir) / SKIPPED_FILES
        listing.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(listing, "".join(line.replace("\n", " ") + "\n" for line in data.skipped))
    paths = [line.split(": ", 1)[0] for line in data.skipped]
    where = f"; every one with its reason in {listing}" if listing else ""
    print(f"vaekit: skipped {len(paths)} unreadable data file(s): {name_files(paths)}{where}", file=sys.stderr,
          flush=True)
    return listing


def plugins_with_verb(verb: str) -> list[Plugin]:
    """Installed plugins (those that import) that add the CLI verb `verb`; used for help without a RUN."""
    found = []
    for entry in list_plugins():
        try:
            plugin = get_plugin(entry.name)
        except PluginError:
            continue  # a broken plugin is reported by `vaekit plugins`, not here
        if verb in plugin.commands():
            found.append(plugin)
    return found


def plugin_status(entry: PluginEntry) -> str:
    """'ok' if the plugin imports, else the error it raised (one line)."""
    try:
        get_plugin(entry.name)
    except PluginError as exc:
        return f"error: {exc}"
    return "ok"
