"""Recipes: one YAML file -> typed dataclasses, with dotted CLI overrides and ${ENV} expansion.

    recipe = load_recipe("recipes/image/mnist.yaml", ["trainer.epochs=20", "model.latent_dim=16"])

Sections: plugin, seed, name, data (the plugin's data_config), model (its model_config),
latent (the engine's prior and posterior family), objective, trainer, eval, subset (how many examples
of each split a run uses, vaekit/subsets.py).
Every error names the file, the key path and what was expected, with
the nearest valid key for a typo.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .kl_control import KLControlConfig
from .subsets import SPLITS, SubsetConfig

DEFAULT_DATA_DIR = "~/.cache/vaekit/data"
MAX_YAML_NODES = 100_000  # values a recipe may hold once its aliases are expanded (real recipes hold ~100)
MAX_QUOTE = 200  # characters of a value an error message quotes


class RecipeError(ValueError):
    """A recipe or override that cannot be used; the message names file, key and what was expected."""


@dataclass
class KLScheduleConfig:
    """How β reaches objective.beta: constant, linear, sigmoid (warmup_steps) or cyclical (n_cycles, ratio)."""

    kind: Literal["constant", "linear", "sigmoid", "cyclical"] = "constant"
    start: float = 0.0
    warmup_steps: int = 0
    warmup_fraction: float | None = None  # warm-up as a fraction of the run; warmup_steps > 0 wins over it
    n_cycles: int = 4
    ratio: float = 0.5
    steepness: float = 10.0


@dataclass
class ObjectiveConfig:
    """Training objective: β-ELBO (schedule, free bits), IWAE, β-TCVAE (β on the TC), InfoVAE, or an autoencoder."""

    kind: Literal["elbo", "iwae", "tcvae", "infovae", "ae"] = "elbo"
    beta: float = 1.0
    free_bits: float = 0.0  # nats per latent dimension
    kl_schedule: KLScheduleConfig = field(default_factory=KLScheduleConfig)
    iw_samples: int = 5  # k for the IWAE bound
    info_alpha: float = 0.0  # infovae: loss = rec + (1 - alpha) KL + (alpha + lambda - 1) MMD(q(z), p(z))
    info_lambda: float = 1.0
    kl_target: float | None = None  # nats per example: β held by a PI controller (vaekit/kl_control.py)
    kl_control: KLControlConfig = field(default_factory=KLControlConfig)

    def __post_init__(self):
        if self.kl_target is not None and self.kind != "elbo":
            raise ValueError(f"kl_target: a KL set-point steers the ELBO's beta; kind is {self.kind!r}")
        if self.kl_target is not None and self.kl_target < 0:
            raise ValueError(f"kl_target: expected nats >= 0, got {self.kl_target}")


@dataclass
class TrainerConfig:
    """The training loop: length, optimiser (AdamW, warm-up then cosine), precision, logging, checkpoints."""

    epochs: int = 10
    max_steps: int | None = None  # caps the run whatever epochs says
    min_steps: int = 0  # at least this many steps whatever epochs says: small data sets get more epochs
    max_minutes: float | None = None  # stops (with a checkpoint) after this much training time (see clock)
    clock: Literal["wall", "process"] = "wall"  # what max_minutes counts: wall time, or this process's CPU time
    batch_size: int = 128
    bucket_batches: int = 0  # > 0: batches of similar length, sorted within pools of this many (needs lengths)
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmup_fraction: float | None = None  # LR warm-up as a fraction of the run; warmup_steps > 0 wins over it
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    precision: Literal["fp32", "bf16"] = "fp32"
    eval_every: int = 1000  # steps; evaluation also runs at the end
    eval_batches: int = 20  # validation batches per evaluation, the final one too (0 = the whole split)
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 10.0  # also checkpoint after this much training time (0 = steps only)
    keep_last: int = 3
    keep_best: bool = False  # also keep the weights with the best validation ELBO (RUN/checkpoints/best-step-N)
    patience: int = 0  # with keep_best: stop once this many evaluations in a row bring no better ELBO (0 = never)
    log_every: int = 10
    samples: int = 16  # samples written to samples/ at each evaluation (0 = none)
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    num_workers: int = 0
    threads: int = 0  # torch CPU threads per process (0 = torch's default)
    progress: bool = True
    find_unused_parameters: bool = False  # DDP only: set when some parameters get no gradient in a step
    init_from: str | None = None  # a run, checkpoint or pretrained folder whose weights start this run (step 0)
    init_parts: list[str] | None = None  # only these top-level modules (encoder, decoder, ...); null = all
    # He et al. 2019 (vaekit/aggressive.py): the encoder catches up before each decoder update, until I(x; z) on
    # validation batches stops rising
    aggressive_inference: bool = False
    aggressive_max_steps: int = 100  # encoder updates per training step at most, while the phase lasts
    aggressive_check_every: int | None = None  # steps between I(x; z) checks; null: each epoch and 20th of the run


@dataclass
class EvalConfig:
    """What `vaekit eval` computes by default."""

    split: Literal["test", "val", "train"] = "test"
    iw_samples: int = 1000  # importance samples per example for the NLL (0 = skip)
    batch_size: int = 100
    max_examples: int | None = None
    # the plugin's own `vaekit eval` flags by name, e.g. {recon_beam_size: 5}; a flag given on the command line wins
    options: dict[str, Any] = field(default_factory=dict)


from .latent import LatentConfig  # noqa: E402  (the engine's latent section, defined beside its builder)


@dataclass
class Recipe:
    """A whole recipe; data and model are instances of the plugin's own dataclasses."""

    plugin: str
    data: Any
    model: Any
    seed: int = 0
    name: str | None = None
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    subset: SubsetConfig = field(default_factory=SubsetConfig)
    source: str = "<recipe>"  # the file it came from (not saved)

    def to_dict(self) -> dict:
        """Plain data for YAML (the resolved recipe saved in each run)."""
        out = {"plugin": self.plugin, "seed": self.seed, "name": self.name}
        for section in ("data", "model", "latent", "objective", "trainer", "eval", "subset"):
            value = getattr(self, section)
            out[section] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)
        return out


def one_line(message: Any, limit: int = MAX_QUOTE) -> str:
    """A message (or an exception's) on one line, cut to limit characters: a library's may span many."""
    text = " ".join(str(message).split()) or (type(message).__name__ if isinstance(message, BaseException) else "")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def quote(value: Any) -> str:
    """repr(value) (an exception's message) on one line, cut to MAX_QUOTE characters, so an error stays one line."""
    return one_line(value if isinstance(value, BaseException) else repr(value))


# -- reading -------------------------------------------------------------------------------------

class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents whose aliases expand past MAX_YAML_NODES values (a "billion laughs")."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        return super().compose_node(parent, index)

    def compose_document(self):
        node = super().compose_document()
        if self.aliases:  # only aliases can make a short document huge
            _count_nodes(node, {}, set())
        return node


def _count_nodes(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Values in node once aliases are expanded; each distinct node is counted once, so this is fast."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise RecipeError("a YAML alias refers to itself (a recursive anchor)")
    open_nodes.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_count_nodes(child, sizes, open_nodes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_count_nodes(k, sizes, open_nodes) + _count_nodes(v, sizes, open_nodes) for k, v in node.value)
    open_nodes.discard(key)
    if size > MAX_YAML_NODES:
        raise RecipeError(f"YAML aliases expand to more than {MAX_YAML_NODES:,} values (an alias bomb?); "
                          "write the values out or use fewer nested anchors")
    sizes[key] = size
    return size


def load_yaml_text(text: str, where: str) -> Any:
    """yaml.safe_load with a bound on alias expansion; errors are RecipeErrors that name where (and the line)."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{where}:{line} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise RecipeError(f"{where}: YAML nested too deeply") from None


def read_yaml(path: str | Path) -> dict:
    """Parse a YAML mapping from a file, with errors that name the file and line."""
    path = Path(path)
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder; expected a recipe YAML file (e.g. recipes/image/shapes.yaml)")
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not a UTF-8 text file (byte {exc.start}); expected a recipe YAML file") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot be read ({exc.strerror})") from None
    data = load_yaml_text(text, str(path))
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping with plugin, data, model, ...")
    return data


def apply_overrides(data: dict, overrides: list[str], source: str) -> dict:
    """Set `a.b.c=value` overrides (value parsed as YAML) on the raw recipe dict."""
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {quote(item)}: expected KEY=VALUE, e.g. trainer.epochs=20")
        key, raw = item.split("=", 1)
        try:
            value = load_yaml_text(raw, f"override {key}") if raw != "" else None
        except RecipeError as exc:
            if "YAML aliases" in str(exc) or "refers to itself" in str(exc):
                raise
            value = raw  # not YAML: the text itself
        parts = key.strip().split(".")
        if not all(parts):
            raise RecipeError(f"override {quote(item)}: expected KEY=VALUE with a dotted key, e.g. trainer.epochs=20")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"override {key}: {'.'.join(parts[:depth + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def expand_env(value: Any) -> Any:
    """Expand ${VAR} and ~ in every string; VAEKIT_DATA defaults to ~/.cache/vaekit/data."""
    if isinstance(value, str):
        if "${" in value:  # most values hold no variable: skip the per-variable pass (it dominates big recipes)
            env = dict(os.environ)
            env.setdefault("VAEKIT_DATA", DEFAULT_DATA_DIR)
            value = _ENV_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)
        return os.path.expanduser(value) if value.startswith("~") else value
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


# -- typing --------------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def did_you_mean(name: Any, choices, otherwise: str = "") -> str:
    """"; did you mean 'x'?" for the choice nearest to a mistyped name, or `otherwise` when none is near."""
    near = difflib.get_close_matches(str(name), [str(choice) for choice in choices], n=1)
    return f"; did you mean {near[0]!r}?" if near else otherwise


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check value against annotation tp and convert (int -> float, list -> tuple); raise naming where."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, where)
            except RecipeError:
                continue
        raise RecipeError(f"{where}: expected {_type_name(tp)}, got {quote(value)}")
    if origin is Literal:
        if value not in args:
            hint = did_you_mean(value, args)
            raise RecipeError(f"{where}: expected {_type_name(tp)}, got {quote(value)}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a section (mapping), got {quote(value)}")
        return build_dataclass(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {quote(value)}")
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {quote(value)}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise RecipeError(f"{where}: expected {_type_name(tp)}, got {quote(value)}")


# Lower bounds of the engine's numbers: (bound, strict). A value outside is an error naming the key.
_BOUNDS: dict[type, dict[str, tuple[float, bool]]] = {
    KLScheduleConfig: {"start": (0, False), "warmup_steps": (0, False), "n_cycles": (1, False),
                       "ratio": (0, True), "steepness": (0, True)},
    ObjectiveConfig: {"beta": (0, False), "free_bits": (0, False), "iw_samples": (1, False)},
    TrainerConfig: {"epochs": (1, False), "max_steps": (1, False), "min_steps": (0, False), "max_minutes": (0, True),
                    "batch_size": (1, False),
                    "bucket_batches": (0, False), "lr": (0, True), "weight_decay": (0, False),
                    "warmup_steps": (0, False), "min_lr_ratio": (0, False), "grad_clip": (0, False),
                    "eval_every": (1, False), "eval_batches": (0, False), "checkpoint_every": (1, False),
                    "keep_last": (1, False), "patience": (0, False), "log_every": (1, False), "samples": (0, False),
                    "num_workers": (0, False), "threads": (0, False), "aggressive_max_steps": (1, False),
                    "aggressive_check_every": (1, False)},
    EvalConfig: {"iw_samples": (0, False), "batch_size": (1, False), "max_examples": (1, False)},
}
_UPPER_BOUNDS: dict[type, dict[str, float]] = {KLScheduleConfig: {"ratio": 1}, TrainerConfig: {"min_lr_ratio": 1}}
# Names that mean the same in every plugin's sections: counts are never negative, a latent has >= 1 dimension.
_COUNT_NAME = re.compile(r"^(num|n|max)_|_(size|dim|steps|every|samples|examples|length|iters|fft|mels|layers)$"
                         r"|^(hidden|width|depth|channels|heads|layers|units)$")
MAX_INT = 2**63 - 1  # torch and NumPy hold integers in 64 bits: a larger one would overflow deep inside them
MAX_SEED = 2**32 - 1  # seeds are mixed with steps and split names into 64-bit generator seeds


def _check_bounds(cls: type, key: str, value: Any, where: str) -> None:
    """Raise RecipeError when a number lies outside what the key can mean (e.g. trainer.log_every=0)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bound = _BOUNDS.get(cls, {}).get(key)
    if bound is None and isinstance(value, int):
        if key == "latent_dim":
            bound = (1, False)
        elif key != "seed" and _COUNT_NAME.search(key):
            bound = (0, False)
    if key == "seed":
        bound = (0, False)
    if bound is not None:
        low, strict = bound
        if value < low or (strict and value == low):
            kind = "an integer" if isinstance(value, int) else "a number"
            raise RecipeError(f"{where}: expected {kind} {'>' if strict else '>='} {low:g}, got {quote(value)}")
    high = _UPPER_BOUNDS.get(cls, {}).get(key)
    if high is not None and value > high:
        raise RecipeError(f"{where}: expected a number <= {high:g}, got {quote(value)}")
    if isinstance(value, int) and not -MAX_INT <= value <= (MAX_SEED if key == "seed" else MAX_INT):
        high, text = (MAX_SEED, "2**32 - 1") if key == "seed" else (MAX_INT, "2**63 - 1")
        bound = f"<= {high:,} ({text})" if value > 0 else f">= {-MAX_INT:,}"
        raise RecipeError(f"{where}: expected an integer {bound}, got {quote(value)}")


def build_dataclass(cls: type, values: dict, where: str) -> Any:
    """Instantiate dataclass cls from a mapping; unknown keys name the nearest valid one."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            hint = did_you_mean(key, fields, otherwise=f"; valid keys: {', '.join(fields)}")
            raise RecipeError(f"{quote(path)[1:-1]}: unknown key{hint}")
        value = _convert(value, hints[key], path)
        _check_bounds(cls, key, value, path)
        if fields[key].metadata.get("must_exist") and value is not None and not Path(value).exists():
            raise RecipeError(f"{path}: {quote(value)[1:-1]} does not exist")
        kwargs[key] = value
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecipeError(f"{where or 'recipe'}: missing required key(s) {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass's own __post_init__ check
        raise RecipeError(f"{where}: {exc}") from None


def parse_recipe(data: dict, source: str = "<recipe>") -> Recipe:
    """Type a raw (already overridden and expanded) recipe dict against the engine and its plugin."""
    from .plugin import PluginError, get_plugin

    data = dict(data)
    if "plugin" not in data:
        raise RecipeError(f"{source}: plugin: missing; name the modality, e.g. plugin: image")
    try:
        plugin = get_plugin(str(data["plugin"]))
    except PluginError as exc:
        raise RecipeError(f"{source}: plugin: {exc}") from None
    sections = {"data": plugin.data_config, "model": plugin.model_config}
    _move_subset_keys(data, plugin.data_config, source)
    typed: dict[str, Any] = {}
    for section, cls in sections.items():
        raw = data.pop(section, None) or {}
        if cls is None:
            typed[section] = raw
        else:
            typed[section] = _wrap(source, lambda cls=cls, raw=raw, section=section: _convert(raw, cls, section))
    values = {k: v for k, v in data.items() if k != "plugin"}
    recipe_fields = [f.name for f in dataclasses.fields(Recipe) if f.name not in ("data", "model", "source")]
    for key in values:
        if key not in recipe_fields:
            hint = did_you_mean(key, recipe_fields + ["data", "model"])
            raise RecipeError(f"{source}: {key}: unknown top-level key{hint}")
    rest = _wrap(source, lambda: build_dataclass(_RecipeRest, values, ""))
    _check_eval_options(plugin, rest.eval.options, source)
    return Recipe(plugin=plugin.name, source=source, data=typed["data"], model=typed["model"], seed=rest.seed,
                  name=rest.name, objective=rest.objective, trainer=rest.trainer, eval=rest.eval,
                  latent=rest.latent, subset=rest.subset)


def _check_eval_options(plugin, options: dict, source: str) -> None:
    """eval.options names the plugin's own `vaekit eval` flags (by their argparse dest): a typo stops the recipe
    when it is read, not after a long evaluation."""
    if not options:
        return
    parser = argparse.ArgumentParser(add_help=False)
    plugin.add_arguments("eval", parser)
    known = sorted(action.dest for action in parser._actions)
    for key in options:
        if key not in known:
            hint = did_you_mean(key, known, otherwise=f"; expected one of {known or 'none'}")
            raise RecipeError(f"{source}: eval.options.{key}: not a `vaekit eval` option of plugin "
                              f"{plugin.name!r}{hint}")


# Plugin data keys the subset section replaced: recipes saved with runs before it may still hold them.
_MOVED_TO_SUBSET = {"max_train_examples": ("train",), "max_examples": SPLITS}


def _move_subset_keys(data: dict, data_config: type | None, source: str) -> None:
    """Read a saved run's old data.max_train_examples / data.max_examples as the subset section, with a note."""
    section = data.get("data")
    if not isinstance(section, dict) or not any(key in section for key in _MOVED_TO_SUBSET):
        return
    data["data"] = section = dict(section)  # the caller's mappings stay as they were
    if isinstance(data.get("subset"), dict):
        data["subset"] = dict(data["subset"])
    known = {f.name for f in dataclasses.fields(data_config)} if dataclasses.is_dataclass(data_config) else set()
    for key, splits in _MOVED_TO_SUBSET.items():
        if key not in section or key in known:
            continue
        value = section.pop(key)
        if value is None:
            continue
        subset = data.setdefault("subset", {})
        if not isinstance(subset, dict):
            raise RecipeError(f"{source}: subset: expected a section (mapping), got {quote(subset)}")
        for split in splits:
            subset.setdefault(split, value)
        moved = ", ".join(f"subset.{split}={quote(value)}" for split in splits)
        print(f"vaekit: note: {source}: data.{key} is now the engine's subset section; read as {moved} "
              f"(examples drawn with the seed, not the first ones)", file=sys.stderr, flush=True)


@dataclass
class _RecipeRest:
    """The engine's own top-level sections (typed together, then merged into Recipe)."""

    seed: int = 0
    name: str | None = None
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    subset: SubsetConfig = field(default_factory=SubsetConfig)


def _wrap(source: str, build):
    try:
        return build()
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override, expand and type a recipe file."""
    data = apply_overrides(read_yaml(path), list(overrides or []), str(path))
    recipe = parse_recipe(expand_env(data), str(path))
    if recipe.name is None:
        recipe.name = Path(path).stem
    return recipe
