"""The recipe's `latent` section: which prior and posterior family the engine puts around a plugin's networks.

    latent:
      prior: standard      # standard (or the plugin's conditional prior) | mog (learned mixture) | vamp
      components: 10       # mog / vamp: mixture components (pseudo-inputs for vamp)
      posterior: diagonal  # diagonal | iaf (inverse autoregressive flow on top of the diagonal Gaussian)
      flow_depth: 2        # iaf: autoregressive steps
      flow_hidden: 0       # iaf: MADE width (0 = max(2 x units, 16))
      sampler: prior       # what `vaekit sample` draws from: prior | gmm (Ghosh et al. 2020: a full-covariance
                           # mixture fitted to the training set's posterior means when training ends) |
                           # pixelcnn (spatial latents: an autoregressive prior over latent pixels, fitted then)
      sampler_components: 10      # gmm: mixture components; pixelcnn: mixture components per latent pixel
      sampler_examples: 10000     # training examples whose codes it is fitted to (0 = all)
      sampler_steps: 3000         # pixelcnn: Adam steps of its fit (batch 64)
      condition_adversary: 0.0    # CVAEs: weight of an adversary that keeps the label condition out of z
                                  # (vaekit/objectives/adversary.py; 0 = off)
      condition_cycle: 0.0        # CVAEs: weight of a cycle through a converted decode (vaekit/objectives/cycle.py;
                                  # 0 = off; about 2.5x the compute per step)

Every plugin (a third party's too) gets these: the plugin builds the encoder and decoder, the engine the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..core.fitted_priors import FittedPixelCNNPrior, FittedPrior
from ..core.flows import IAFEncoder
from ..core.priors import MixturePrior, VampPrior
from ..objectives.adversary import ConditionAdversary
from ..objectives.cycle import ConditionCycle, check_cycle_decoder
from .vae import ConditionEmbedding, StandardNormalPrior


@dataclass
class LatentConfig:
    """Prior and posterior family around the plugin's networks (see the module docstring)."""

    prior: Literal["standard", "mog", "vamp"] = "standard"
    components: int = 10
    posterior: Literal["diagonal", "iaf"] = "diagonal"
    flow_depth: int = 2
    flow_hidden: int = 0
    sampler: Literal["prior", "gmm", "pixelcnn"] = "prior"
    sampler_components: int = 10
    sampler_examples: int = 10000
    sampler_steps: int = 3000
    pseudo_input_shape: list[int] | None = None  # vamp: written by the engine (one example's shape) for reloading
    condition_adversary: float = 0.0  # weight of the condition adversary's cross-entropy in the loss (0 = none)
    condition_cycle: float = 0.0  # weight of the condition cycle's reconstruction nats in the loss (0 = none)

    def __post_init__(self):
        if self.components < 1 or self.flow_depth < 1 or self.flow_hidden < 0:
            raise ValueError("components and flow_depth must be >= 1 and flow_hidden >= 0")
        if self.sampler_components < 1 or self.sampler_examples < 0 or self.sampler_steps < 1:
            raise ValueError("sampler_components and sampler_steps must be >= 1 and sampler_examples >= 0")
        if not self.condition_adversary >= 0:
            raise ValueError(f"condition_adversary: expected a weight >= 0, got {self.condition_adversary}")
        if not self.condition_cycle >= 0:
            raise ValueError(f"condition_cycle: expected a weight >= 0, got {self.condition_cycle}")


def apply_latent_config(model, cfg: LatentConfig, dataset=None):
    """Give a plugin-built VAE the recipe's prior and posterior; the training set (items {"x": ...}) seeds VampPrior.

    Returns the model; cfg.pseudo_input_shape is filled in so a saved model rebuilds without data.
    """
    shape = tuple(model.latent_shape)
    if cfg.prior != "standard" or cfg.posterior != "diagonal":
        if any(size is None for size in shape) and cfg.prior != "standard":
            raise ValueError(f"latent.prior={cfg.prior}: needs a fixed-shape latent; this model's is {shape}")
        if model.conditional_prior and cfg.prior != "standard":
            raise ValueError(f"latent.prior={cfg.prior}: the model already has a learned conditional prior")
    if cfg.sampler != "prior" and (problem := sampler_unusable(model, cfg.sampler)):
        raise ValueError(f"latent.sampler={cfg.sampler}: this model cannot use it: {problem} "
                         f"(use latent.sampler=prior)")
    if cfg.prior == "mog":
        model.prior_net = MixturePrior(shape, cfg.components)
    elif cfg.prior == "vamp":
        model.prior_net = VampPrior(model.encoder, _pseudo_inputs(cfg, dataset), shape)
    if cfg.posterior == "iaf":
        units = shape[-1] if any(size is None for size in shape) else math.prod(shape)  # sequences: per step
        model.encoder = IAFEncoder(model.encoder, units, cfg.flow_depth, cfg.flow_hidden)
        if cfg.prior == "vamp":  # the pseudo-inputs' posteriors are the diagonal base, not the flow
            model.prior_net._encoder = [model.encoder.base]
    if cfg.condition_adversary > 0:
        model.condition_adversary = ConditionAdversary(shape, label_classes(model), cfg.condition_adversary)
    if cfg.condition_cycle > 0:
        classes = label_classes(model, "latent.condition_cycle")
        check_cycle_decoder(model)
        model.condition_cycle = ConditionCycle(classes, cfg.condition_cycle)
    return model


def label_classes(model, key: str = "latent.condition_adversary") -> list[int]:
    """Classes per label column of the model's condition, or a ValueError when it has no label condition."""
    for module in model.modules():
        if isinstance(module, ConditionEmbedding) and module.num_classes is not None:
            return list(module.num_classes)
    raise ValueError(f"{key}: needs a model conditioned on labels (a CVAE: the data's "
                     "condition, e.g. data.condition_on); this model has none")


def sampler_unusable(model, sampler: str) -> str | None:
    """Why a fitted sampler (gmm or pixelcnn) cannot stand in for this model's prior (one phrase), or None."""
    shape = tuple(model.latent_shape)
    if any(size is None for size in shape):
        return f"its latent has no fixed shape ({shape})"
    if not isinstance(model.prior_net, (StandardNormalPrior, MixturePrior, VampPrior, FittedPrior,
                                        FittedPixelCNNPrior)):
        return "it has a learned conditional prior, which a prior fitted without the condition would replace"
    if sampler == "pixelcnn" and len(shape) != 3:
        return f"pixelcnn needs a spatial latent [channels, height, width]; this model's is {shape}"
    return None


def _pseudo_inputs(cfg: LatentConfig, dataset) -> torch.Tensor:
    """K pseudo-inputs: K training examples spread over the set, or zeros of the saved shape when reloading."""
    if dataset is not None:
        picks = torch.linspace(0, len(dataset) - 1, cfg.components).long().tolist()
        examples = [dataset[i]["x"] for i in picks]
        if not all(torch.is_tensor(x) and x.is_floating_point() for x in examples):
            raise ValueError("latent.prior=vamp: needs data points that are one float tensor (pseudo-inputs are "
                             "learned in data space); this plugin's are not")
        cfg.pseudo_input_shape = list(examples[0].shape)
        return torch.stack(examples).float()
    if cfg.pseudo_input_shape is None:
        raise ValueError("latent.prior=vamp: no training set to draw the pseudo-inputs from")
    return torch.zeros(cfg.components, *cfg.pseudo_input_shape)
