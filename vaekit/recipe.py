"""Recipes: one YAML file -> typed dataclasses, with dotted CLI overrides and ${ENV} expansion.

    recipe = load_recipe("recipes/image/mnist.yaml", ["trainer.epochs=20", "model.latent_dim=16"])

Sections: plugin, seed, name, data (the plugin's data_config), model (its model_config),
objective, trainer, eval. Every error names the file, the key path and what was expected, with
the nearest valid key for a typo.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .kl_control import KLControlConfig

DEFAULT_DATA_DIR = "~/.cache/vaekit/data"


class RecipeError(ValueError):
    """A recipe or override that cannot be used; the message names file, key and what was expected."""


@dataclass
class KLScheduleConfig:
    """How β reaches objective.beta: constant, linear, sigmoid (warmup_steps) or cyclical (n_cycles, ratio)."""

    kind: Literal["constant", "linear", "sigmoid", "cyclical"] = "constant"
    start: float = 0.0
    warmup_steps: int = 0
    n_cycles: int = 4
    ratio: float = 0.5
    steepness: float = 10.0


@dataclass
class ObjectiveConfig:
    """Training objective: the β-ELBO (with schedule and free bits) or the IWAE bound."""

    kind: Literal["elbo", "iwae"] = "elbo"
    beta: float = 1.0
    free_bits: float = 0.0  # nats per latent dimension
    kl_schedule: KLScheduleConfig = field(default_factory=KLScheduleConfig)
    iw_samples: int = 5  # k for the IWAE bound
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
    max_minutes: float | None = None  # stops (with a checkpoint) after this much training wall time
    batch_size: int = 128
    bucket_batches: int = 0  # > 0: batches of similar length, sorted within pools of this many (needs lengths)
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    precision: Literal["fp32", "bf16"] = "fp32"
    eval_every: int = 1000  # steps; evaluation also runs at the end
    eval_batches: int = 20  # validation batches per evaluation, the final one too (0 = the whole split)
    checkpoint_every: int = 1000
    keep_last: int = 3
    log_every: int = 10
    samples: int = 16  # samples written to samples/ at each evaluation (0 = none)
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    num_workers: int = 0
    threads: int = 0  # torch CPU threads per process (0 = torch's default)
    progress: bool = True
    find_unused_parameters: bool = False  # DDP only: set when some parameters get no gradient in a step


@dataclass
class EvalConfig:
    """What `vaekit eval` computes by default."""

    split: Literal["test", "val", "train"] = "test"
    iw_samples: int = 1000  # importance samples per example for the NLL (0 = skip)
    batch_size: int = 100
    max_examples: int | None = None


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
    source: str = "<recipe>"  # the file it came from (not saved)

    def to_dict(self) -> dict:
        """Plain data for YAML (the resolved recipe saved in each run)."""
        out = {"plugin": self.plugin, "seed": self.seed, "name": self.name}
        for section in ("data", "model", "objective", "trainer", "eval"):
            value = getattr(self, section)
            out[section] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)
        return out


# -- reading -------------------------------------------------------------------------------------

def read_yaml(path: str | Path) -> dict:
    """Parse a YAML mapping from a file, with errors that name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping with plugin, data, model, ...")
    return data


def apply_overrides(data: dict, overrides: list[str], source: str) -> dict:
    """Set `a.b.c=value` overrides (value parsed as YAML) on the raw recipe dict."""
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r}: expected KEY=VALUE, e.g. trainer.epochs=20")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
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
        env = dict(os.environ)
        env.setdefault("VAEKIT_DATA", DEFAULT_DATA_DIR)
        for name, val in env.items():
            value = value.replace("${" + name + "}", val)
        return os.path.expanduser(value) if value.startswith("~") else value
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


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
        raise RecipeError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            near = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise RecipeError(f"{where}: expected {_type_name(tp)}, got {value!r}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a section (mapping), got {value!r}")
        return build_dataclass(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
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
    raise RecipeError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def build_dataclass(cls: type, values: dict, where: str) -> Any:
    """Instantiate dataclass cls from a mapping; unknown keys name the nearest valid one."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(fields)}"
            raise RecipeError(f"{path}: unknown key{hint}")
        value = _convert(value, hints[key], path)
        if fields[key].metadata.get("must_exist") and value is not None and not Path(value).exists():
            raise RecipeError(f"{path}: {value} does not exist")
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
            near = difflib.get_close_matches(key, recipe_fields + ["data", "model"], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise RecipeError(f"{source}: {key}: unknown top-level key{hint}")
    rest = _wrap(source, lambda: build_dataclass(_RecipeRest, values, ""))
    return Recipe(plugin=plugin.name, source=source, data=typed["data"], model=typed["model"], seed=rest.seed,
                  name=rest.name, objective=rest.objective, trainer=rest.trainer, eval=rest.eval)


@dataclass
class _RecipeRest:
    """The engine's own top-level sections (typed together, then merged into Recipe)."""

    seed: int = 0
    name: str | None = None
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


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
