"""Recipes: one YAML file -> typed dataclasses, with dotted CLI overrides and ${ENV} expansion.

    recipe = load_recipe("recipes/image/mnist.yaml", ["trainer.epochs=20", "model.latent_dim=16"])

Sections: plugin, seed, name, data (the plugin's data_config), model (its model_config),
latent (the engine's prior and posterior family), objective, trainer, eval, subset (how many examples
of each split a run uses, vaekit/config/subsets.py), semi_supervised (objective.kind m2's labels and networks,
vaekit/config/semi_supervised.py).
Every error names the file, the key path and what was expected, with
the nearest valid key for a typo. Reading the text (YAML, overrides, ${ENV}, typing a value against a
dataclass) is vaekit/config/reading.py; this module types a whole recipe against the engine and its plugin.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..io.messages import did_you_mean, one_line, quote  # noqa: F401  (one_line, quote: also read from here)
from ..model.latent import LatentConfig
from ..objectives.kl_control import KLControlConfig
from ..plugin import PluginError, get_plugin
from .reading import (  # noqa: F401  (the reading half, also read from here)
    BOUNDS,
    UPPER_BOUNDS,
    RecipeError,
    _convert,
    apply_overrides,
    build_dataclass,
    expand_env,
    read_yaml,
)
from .semi_supervised import SemiSupervisedConfig
from .subsets import SPLITS, SubsetConfig


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
    """Training objective: β-ELBO (schedule, free bits), IWAE, β-TCVAE (β on the TC), InfoVAE, an autoencoder, or
    M2 (semi-supervised, Kingma et al. 2014: the semi_supervised section)."""

    kind: Literal["elbo", "iwae", "tcvae", "infovae", "ae", "m2"] = "elbo"
    beta: float = 1.0
    free_bits: float = 0.0  # nats per latent dimension
    kl_schedule: KLScheduleConfig = field(default_factory=KLScheduleConfig)
    iw_samples: int = 5  # k for the IWAE bound
    info_alpha: float = 0.0  # infovae: loss = rec + (1 - alpha) KL + (alpha + lambda - 1) MMD(q(z), p(z))
    info_lambda: float = 1.0
    alpha: float = 1.0  # m2: weight of a labelled example's classification loss -log q(y|x) beside its ELBO
    kl_target: float | None = None  # nats per example: β held by a PI controller (vaekit/objectives/kl_control.py)
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
    # He et al. 2019 (vaekit/training/aggressive.py): the encoder catches up before each decoder update, until
    # I(x; z) on validation batches stops rising
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


# Lower bounds of the engine's numbers: (bound, strict). A value outside is an error naming the key.
BOUNDS.update({
    KLScheduleConfig: {"start": (0, False), "warmup_steps": (0, False), "n_cycles": (1, False),
                       "ratio": (0, True), "steepness": (0, True)},
    ObjectiveConfig: {"beta": (0, False), "free_bits": (0, False), "iw_samples": (1, False), "alpha": (0, False)},
    TrainerConfig: {"epochs": (1, False), "max_steps": (1, False), "min_steps": (0, False), "max_minutes": (0, True),
                    "batch_size": (1, False),
                    "bucket_batches": (0, False), "lr": (0, True), "weight_decay": (0, False),
                    "warmup_steps": (0, False), "min_lr_ratio": (0, False), "grad_clip": (0, False),
                    "eval_every": (1, False), "eval_batches": (0, False), "checkpoint_every": (1, False),
                    "keep_last": (1, False), "patience": (0, False), "log_every": (1, False), "samples": (0, False),
                    "num_workers": (0, False), "threads": (0, False), "aggressive_max_steps": (1, False),
                    "aggressive_check_every": (1, False)},
    EvalConfig: {"iw_samples": (0, False), "batch_size": (1, False), "max_examples": (1, False)},
})
UPPER_BOUNDS.update({KLScheduleConfig: {"ratio": 1}, TrainerConfig: {"min_lr_ratio": 1}})


@dataclass
class EngineSections:
    """The engine's own top-level sections of a recipe, typed together from the YAML; Recipe adds the plugin's."""

    seed: int = 0
    name: str | None = None
    latent: LatentConfig = field(default_factory=LatentConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    subset: SubsetConfig = field(default_factory=SubsetConfig)
    semi_supervised: SemiSupervisedConfig = field(default_factory=SemiSupervisedConfig)


@dataclass(kw_only=True)
class Recipe(EngineSections):
    """A whole recipe; data and model are instances of the plugin's own dataclasses."""

    plugin: str
    data: Any
    model: Any
    source: str = "<recipe>"  # the file it came from (not saved)

    def to_dict(self) -> dict:
        """Plain data for YAML (the resolved recipe saved in each run)."""
        out = {"plugin": self.plugin, "seed": self.seed, "name": self.name}
        for section in ("data", "model", *SECTIONS):
            value = getattr(self, section)
            out[section] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)
        return out


SECTIONS = [f.name for f in dataclasses.fields(EngineSections) if f.name not in ("seed", "name")]


def parse_recipe(data: dict, source: str = "<recipe>") -> Recipe:
    """Type a raw (already overridden and expanded) recipe dict against the engine and its plugin."""
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
    recipe_fields = ["seed", "name", *SECTIONS]
    for key in values:
        if key not in recipe_fields:
            hint = did_you_mean(key, recipe_fields + ["data", "model"])
            raise RecipeError(f"{source}: {key}: unknown top-level key{hint}")
    engine = _wrap(source, lambda: build_dataclass(EngineSections, values, ""))
    _check_eval_options(plugin, engine.eval.options, source)
    return Recipe(plugin=plugin.name, source=source, data=typed["data"], model=typed["model"],
                  **{f.name: getattr(engine, f.name) for f in dataclasses.fields(EngineSections)})


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
