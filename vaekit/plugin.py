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

    Each dataset item is a dict with "x" (tensor or dict of tensors) and optionally "c" (the
    condition); `collate` batches them (torch's default_collate when None). `info` must be JSON:
    it is saved with every checkpoint so build_model can rebuild the model without the data.
    `lengths` (one size per training example, e.g. tokens) lets trainer.bucket_batches group
    examples of similar length. `skipped` lists the data files left out (data.skip_bad_files), one
    "path: reason" each: the trainer announces them in one line and writes them to the run folder.
    """

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    info: dict[str, Any] = field(default_factory=dict)
    collate: Callable | None = None
    lengths: Sequence[int] | None = None
    skipped: list[str] = field(default_factory=list)


class Plugin:
    """Base class of a modality. Subclasses set the attributes and implement the methods they support.

    Files a plugin must keep with the model (a tokenizer, say) go in `assets`, a folder that travels
    with every run and every save_pretrained; build_model receives it back.
    """

    name: str = ""
    description: str = ""
    data_config: type | None = None  # dataclass type checked against the recipe's `data` section
    model_config: type | None = None  # dataclass type checked against the recipe's `model` section
    # True: build_data takes a `subset` keyword (the recipe's subset section) and cuts its lists with
    # vaekit.config.subsets.pick before its costly work; False: the engine cuts the datasets it returns.
    takes_subset: bool = False

    # -- required -------------------------------------------------------------------------------
    def build_data(self, data: Any, *, seed: int, assets: Path) -> DataBundle:
        """Datasets for train / val / test from the recipe's data section (a data_config instance)."""
        raise NotImplementedError

    def build_model(self, model: Any, info: dict, *, assets: Path) -> VAE:
        """The VAE from the recipe's model section and the data facts build_data put in info."""
        raise NotImplementedError

    # -- what people do with a trained model (CLI verbs); each writes files and returns them ------
    def add_arguments(self, verb: str, parser) -> None:
        """Add plugin options to the argparse parser of `sample`, `reconstruct`, `interpolate`, `traverse`, `eval`."""

    def parse_condition(self, text: str, model: VAE) -> Tensor:
        """Turn `--condition TEXT` into the model's condition tensor [1, ...] (a label, speaker=...)."""
        raise PluginError(f"plugin {self.name!r} does not take conditions")

    def sample(self, model: VAE, n: int, condition: Tensor | None, out_dir: Path, **options) -> list[Path]:
        """Draw n samples and write them as files people open (PNG grid, .txt, .wav); options carry the CLI's
        temperature= (the scale of the latents' spread) and the plugin's own options."""
        raise PluginError(f"plugin {self.name!r} does not support sample")

    def reconstruct(self, model: VAE, inputs: list[str], condition: Tensor | None, out_dir: Path,
                    **options) -> list[Path]:
        """Encode and decode the given inputs (file paths or text); write input beside output."""
        raise PluginError(f"plugin {self.name!r} does not support reconstruct")

    def interpolate(self, model: VAE, a: str, b: str, out_dir: Path, **options) -> list[Path]:
        """Decode points on the latent path between inputs a and b; write them. options carry the CLI's steps=
        (points, both ends included) and method= (linear or slerp): see vaekit.latent_path."""
        raise PluginError(f"plugin {self.name!r} does not support interpolate")

    def traverse(self, model: VAE, out_dir: Path, input: str | None = None, dims: str | list[int] | None = None,
                 span: float = 3.0, steps: int = 9, **options) -> list[Path]:
        """Decode vaekit.evaluation.latent_paths.traversal around the prior mean (or input's posterior mean); write
        it."""
        raise PluginError(f"plugin {self.name!r} does not support traverse")

    def load_inputs(self, model: VAE, inputs: list[str]):
        """Files (or sentences, for text) -> one model-ready batch x on the model's device (`vaekit encode`)."""
        raise PluginError(f"plugin {self.name!r} does not read input files; encode a data split with --split")

    def eval_metrics(self, model: VAE, loader, summary: dict[str, float], **options) -> dict[str, float]:
        """Modality metrics (bits/dim, perplexity, ...) from the engine's summary and the eval data."""
        return {}

    def commands(self) -> dict[str, tuple[Callable, Callable]]:
        """Extra CLI verbs: name -> (add_arguments(parser), run(model, plugin, args) -> list[Path])."""
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
