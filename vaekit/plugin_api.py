"""What a vaekit plugin may import: the one stable place, whatever module of the engine defines each name.

    from vaekit.plugin_api import VAE, DataBundle, DiagonalGaussian, Plugin, PluginError, at_least

This module is the stable surface for plugin code: a plugin imports engine names from here only, and its
example code does too (examples/vaekit-points, examples/vaekit-series). The top-level `vaekit` package and the
engine's modules re-export many of the same objects (`vaekit.Plugin is vaekit.plugin_api.Plugin`), but the
engine's own modules may move and the top level is the engine's API for scripts, not the plugin contract.
A plugin's tests import the conformance kit from `vaekit.testing`. The groups:

- the contract: Plugin (subclass it), DataBundle (what build_data returns), PluginError (every "this plugin
  cannot do that": an unsupported verb, a condition a model does not take: Plugin.parse_condition raises it by
  default, and a plugin that overrides parse_condition raises it for its unconditional models), EncoderProtocol and
  DecoderProtocol (what VAE calls on the two networks), check_plugin (a static check of a plugin object),
  SubsetConfig (what build_data receives as `subset` when the plugin sets takes_subset) and DemoKinds (the
  kinds of input and output `vaekit demo` shows for the plugin: Plugin.demo_kinds);
- building models: VAE, DiagonalGaussian (what an encoder returns), the likelihoods (a decoder's log p(x|z)),
  ConditionEmbedding and LearnedConditionalPrior (for a conditional model);
- configs and recipes: RecipeError (a bad value in a recipe section, naming its key), build_dataclass,
  read_yaml, expand_env, parse_recipe, load_recipe (to reread a run's recipe.yaml), quote and one_line (a value
  or message cut to one error line);
- data: pick (the items a recipe's subset keeps), SPLITS, build_recipe_data (a recipe's datasets, each split
  cut to its subset), name_files (a few file names for one message), to_device;
- the CLI verbs: at_least (an argparse type with a one-line error), parse_dims, path_weights, mix, latent_path,
  traversal, traversal_values (one meaning of --dims, --steps and --method in every plugin);
- files and folders: atomic_open, atomic_write_text, atomic_write_bytes (never written through a link),
  run_dir_of (the run folder a loaded model came from), load (a model from a folder);
- metrics: cached_classifier, fit_classifier, predict, accuracy, frechet_distance, precision_recall,
  relative_scores, report_classifier (a classifier's scores of generated data beside its score of real data).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from .cli.parsers import at_least
from .config.reading import RecipeError, build_dataclass, expand_env, read_yaml
from .config.recipe import load_recipe, parse_recipe
from .config.subsets import SPLITS, SubsetConfig, pick
from .core.batch import to_device
from .core.distributions import DiagonalGaussian, sequence_mask
from .core.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, Gaussian, Laplace, Likelihood, get_likelihood
from .evaluation.classifier_metrics import (
    accuracy,
    cached_classifier,
    fit_classifier,
    frechet_distance,
    precision_recall,
    predict,
    relative_scores,
    report_classifier,
)
from .evaluation.latent_paths import latent_path, mix, parse_dims, path_weights, traversal, traversal_values
from .io.checkpoint import run_dir_of
from .io.messages import one_line, quote
from .io.safe_writes import atomic_open, atomic_write_bytes, atomic_write_text
from .model.vae import VAE, ConditionEmbedding, LearnedConditionalPrior
from .plugin import DEMO_KINDS, DataBundle, DemoKinds, Plugin, PluginError, name_files
from .runs import build_recipe_data, load

__all__ = [
    # the contract
    "Plugin", "DataBundle", "PluginError", "EncoderProtocol", "DecoderProtocol", "check_plugin", "SubsetConfig",
    "DemoKinds",
    # building models
    "VAE", "DiagonalGaussian", "sequence_mask", "Likelihood", "Bernoulli", "Gaussian", "Laplace",
    "DiscretizedLogistic", "Categorical", "get_likelihood", "ConditionEmbedding", "LearnedConditionalPrior",
    # configs and recipes
    "RecipeError", "build_dataclass", "read_yaml", "expand_env", "parse_recipe", "load_recipe", "quote", "one_line",
    # data
    "pick", "SPLITS", "build_recipe_data", "name_files", "to_device",
    # the CLI verbs
    "at_least", "parse_dims", "path_weights", "mix", "latent_path", "traversal", "traversal_values",
    # files and folders
    "atomic_open", "atomic_write_text", "atomic_write_bytes", "run_dir_of", "load",
    # metrics
    "cached_classifier", "fit_classifier", "predict", "accuracy", "frechet_distance", "precision_recall",
    "relative_scores", "report_classifier",
]


@runtime_checkable
class EncoderProtocol(Protocol):
    """q(z|x, c): VAE.posterior calls encoder(x, c) (c None for an unconditional model, or a batch without "c").

    x is a collated batch on the model's device, as DataBundle.collate (or torch's default_collate) made it from
    the items' "x", or as the plugin's load_inputs returned it.
    """

    def __call__(self, x: Any, c: Tensor | None = None) -> DiagonalGaussian:
        """The posterior over a batch: a DiagonalGaussian [B, *latent_shape] (a sequence latent: masked [B, T, D])."""
        ...


@runtime_checkable
class DecoderProtocol(Protocol):
    """p(x|z, c): VAE.log_likelihood calls log_prob, VAE.decode (sample, reconstruct) calls generate.

    A decoder may also define differentiable_mean(x, z, c) -> E[x|z, c] shaped like x, with gradients: the
    recipe's latent.condition_cycle needs it, nothing else does.
    """

    def log_prob(self, x: Any, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(x|z, c) per example: [N] nats, for x [N, ...] and z [N, *latent_shape] of one batch size N.

        The engine never passes extra sample axes: for k latent samples per example (IWAE, importance-sampled NLL,
        refinement) it tiles x and c to [k * B, ...] (the whole batch repeated k times, vaekit.core.batch.tile),
        flattens z from [k, B, *latent_shape] to [k * B, *latent_shape], and reshapes the [k * B] result to
        [k, B] itself. Return one sum per row, over all of that example's elements.
        """
        ...

    def generate(self, z: Tensor, c: Tensor | None = None, **options) -> Any:
        """A data point per latent (a mean image, greedy text, a mel), batched as the data's x: z [N, ...] gives N
        examples. options are the plugin's own decoding options (VAE.decode passes them on)."""
        ...


REQUIRED_METHODS = ("build_data", "build_model")
VERBS = ("sample", "reconstruct", "interpolate", "traverse", "load_inputs", "parse_condition", "condition_choices",
         "demo_verbs", "eval_metrics")


def check_plugin(plugin: Any) -> None:
    """Check a plugin object without running it: attributes, methods and configs; a PluginError (one line) if not."""
    if isinstance(plugin, type):
        raise PluginError(f"{plugin.__name__} is a class; give the plugin object, {plugin.__name__}()")
    if not isinstance(plugin, Plugin):
        raise PluginError(f"a {type(plugin).__name__} is not a plugin: subclass vaekit.plugin_api.Plugin")
    label = f"plugin {plugin.name!r}" if plugin.name else f"plugin {type(plugin).__name__}"
    if not isinstance(plugin.name, str) or not plugin.name:
        raise PluginError(f"{label}: name must be a non-empty string (the entry-point name recipes use)")
    if not isinstance(plugin.description, str):
        raise PluginError(f"{label}: description must be a string, got {type(plugin.description).__name__}")
    for attr in ("data_config", "model_config"):
        config = getattr(plugin, attr)
        if config is None:
            continue
        if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
            raise PluginError(f"{label}: {attr} must be a dataclass type (the recipe's section is typed by it), "
                              f"got {config!r}")
    kinds = plugin.demo_kinds
    if not isinstance(kinds, DemoKinds) or kinds.input not in DEMO_KINDS or kinds.output not in DEMO_KINDS:
        raise PluginError(f"{label}: demo_kinds must be DemoKinds(input=..., output=...), each one of "
                          f"{', '.join(DEMO_KINDS)}; got {kinds!r}")
    if not isinstance(plugin.takes_subset, bool):
        raise PluginError(f"{label}: takes_subset must be True or False, got {plugin.takes_subset!r}")
    for method in REQUIRED_METHODS:
        if getattr(type(plugin), method) is getattr(Plugin, method):
            raise PluginError(f"{label}: {method} is not implemented (every plugin needs build_data and build_model)")
    build_data = inspect.signature(plugin.build_data).parameters
    for keyword in ("seed", "assets") + (("subset",) if plugin.takes_subset else ()):
        if keyword not in build_data and not any(p.kind is p.VAR_KEYWORD for p in build_data.values()):
            why = " (takes_subset is True)" if keyword == "subset" else ""
            raise PluginError(f"{label}: build_data must take the keyword {keyword!r}{why}")
    if "assets" not in inspect.signature(plugin.build_model).parameters:
        raise PluginError(f"{label}: build_model must take the keyword 'assets'")
    for method in VERBS + ("add_arguments", "commands"):
        if not callable(getattr(plugin, method, None)):
            raise PluginError(f"{label}: {method} must be a method")
    commands = plugin.commands()
    if not isinstance(commands, dict):
        raise PluginError(f"{label}: commands() must return a dict (verb -> (add_arguments, run))")
    for verb, pair in commands.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(callable(f) for f in pair)):
            raise PluginError(f"{label}: commands()[{verb!r}] must be a pair (add_arguments(parser), "
                              "run(model, plugin, args))")

