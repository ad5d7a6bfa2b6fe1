"""vaekit: variational autoencoders for images, text and speech — one engine, modality plugins.

    from vaekit import DiagonalGaussian, elbo, iw_nll, schedules

The public API, gathered from the engine's subpackages (docs/architecture.md, "Layout"): core, objectives,
model, plugin, config, runs, evaluation, training, io, cli. `vaekit.schedules`, `vaekit.likelihoods`,
`vaekit.diagnostics` and `vaekit.safe_io` are those modules (vaekit.objectives.schedules,
vaekit.core.likelihoods, vaekit.evaluation.diagnostics, vaekit.io.safe_writes).
"""

from . import _startup  # noqa: F401, I001  (first: Ctrl-C while the command imports torch exits quietly)
from ._version import __version__
from .core import likelihoods
from .core.distributions import DiagonalGaussian, sequence_mask
from .core.flows import IAFEncoder, IAFPosterior
from .core.likelihoods import (
    Bernoulli,
    Categorical,
    DiscretizedLogistic,
    Gaussian,
    Laplace,
    Likelihood,
    get_likelihood,
)
from .core.priors import GaussianMixture, MixturePrior, VampPrior
from .config.recipe import Recipe, load_recipe
from .config.reading import RecipeError
from .config.subsets import SubsetConfig
from .evaluation import diagnostics
from .evaluation.diagnostics import active_units, mutual_information
from .evaluation.latent_paths import latent_path, path_weights
from .io import safe_writes as safe_io
from .io.checkpoint import CheckpointError, save_pretrained
from .model.latent import LatentConfig
from .model.vae import VAE, ConditionEmbedding, LearnedConditionalPrior, StandardNormalPrior
from .objectives import schedules
from .objectives.elbo import (
    ELBO,
    IWAE,
    Autoencoder,
    BetaTCVAE,
    InfoVAE,
    Objective,
    ObjectiveTerms,
    elbo,
    iw_nll,
    iwae_bound,
    kl_divergence,
    log_importance_weights,
)
from .objectives.kl_control import ControlledELBO, KLController
from .objectives.schedules import KLSchedule
from .plugin import DataBundle, Plugin, PluginError, get_plugin, list_plugins, register_plugin
from .runs import build_recipe_data, load
from .training.memory import keep_freed_memory

__all__ = [
    "DiagonalGaussian", "Likelihood", "Bernoulli", "Gaussian", "Laplace", "DiscretizedLogistic", "Categorical",
    "get_likelihood", "elbo", "iwae_bound", "iw_nll", "log_importance_weights", "Objective", "ObjectiveTerms",
    "ELBO", "IWAE", "KLSchedule", "KLController", "ControlledELBO", "schedules", "diagnostics", "likelihoods",
    "safe_io", "active_units",
    "mutual_information", "VAE", "ConditionEmbedding", "LearnedConditionalPrior", "StandardNormalPrior",
    "Plugin", "PluginError", "DataBundle", "get_plugin", "list_plugins", "register_plugin", "Recipe",
    "RecipeError", "load_recipe", "load", "save_pretrained", "CheckpointError", "keep_freed_memory", "__version__",
    "sequence_mask", "IAFEncoder", "IAFPosterior", "LatentConfig", "Autoencoder", "BetaTCVAE", "InfoVAE",
    "kl_divergence", "GaussianMixture", "MixturePrior", "VampPrior", "latent_path", "path_weights",
    "build_recipe_data", "SubsetConfig",
]
