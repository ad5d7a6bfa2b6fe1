"""vaekit: variational autoencoders for images, text and speech — one engine, modality plugins.

    from vaekit import DiagonalGaussian, elbo, iw_nll, schedules
"""

from . import _startup  # noqa: F401, I001  (first: Ctrl-C while the command imports torch exits quietly)
from . import diagnostics, likelihoods, safe_io, schedules
from .checkpoint import CheckpointError, load, save_pretrained
from .diagnostics import active_units, mutual_information
from .distributions import DiagonalGaussian, sequence_mask
from .flows import IAFEncoder, IAFPosterior
from .kl_control import ControlledELBO, KLController
from .latent import LatentConfig
from .latent_paths import latent_path, path_weights
from .likelihoods import (
    Bernoulli,
    Categorical,
    DiscretizedLogistic,
    Gaussian,
    Laplace,
    Likelihood,
    get_likelihood,
)
from .memory import keep_freed_memory
from .model import VAE, ConditionEmbedding, LearnedConditionalPrior, StandardNormalPrior
from .objectives import (
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
from .plugin import DataBundle, Plugin, PluginError, build_recipe_data, get_plugin, list_plugins, register_plugin
from .subsets import SubsetConfig
from .priors import GaussianMixture, MixturePrior, VampPrior
from .recipe import Recipe, RecipeError, load_recipe
from .schedules import KLSchedule

__version__ = "0.1.0"

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
