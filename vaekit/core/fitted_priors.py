"""Priors fitted after training, as modules for VAE.prior_net: a full-covariance Gaussian mixture over the
flattened units (FittedPrior) and a latent PixelCNN over a spatial latent's pixels (FittedPixelCNNPrior).

    model.prior_net = FittedPrior(fit_gmm(codes, 10)[0], model.latent_shape)

vaekit.evaluation.samplers fits them to the training set's codes and keeps them in the run folder; they live
here, beside the other priors, so that the model's latent section can tell them from a learned conditional
prior (vaekit.model.latent.sampler_unusable) without importing the fitting code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FullGaussianMixture:
    """sum_k w_k N(means_k, covs_k) over flattened units [U], reshaped to the latent's event shape on sampling."""

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor, event_shape: tuple[int, ...], batch_size: int):
        self.weights, self.means, self.covs = weights, means, covs
        self.event_shape, self.batch_size = tuple(event_shape), batch_size
        self.mask = None
        self.event_dims = len(self.event_shape)
        self.mean = (weights @ means).reshape(self.event_shape).expand(batch_size, *self.event_shape)
        self.components = torch.distributions.MultivariateNormal(means, covariance_matrix=covs)
        self._cholesky = None  # the components' Cholesky factors [K, U, U], on the first draw

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (nats): z [..., *event] -> [...]."""
        flat = z.reshape(*z.shape[:z.dim() - self.event_dims], 1, -1).to(self.means.dtype)
        return torch.logsumexp(self.components.log_prob(flat) + self.weights.log(), -1).to(z.dtype)

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Draws [batch_size, *event] (or [n, batch_size, *event]); temperature scales each component's spread."""
        shape = (self.batch_size,) if n is None else (n, self.batch_size)
        k = torch.multinomial(self.weights, math.prod(shape), replacement=True)
        eps = torch.randn(len(k), self.means.shape[1], dtype=self.means.dtype, device=self.means.device)
        if self._cholesky is None:
            self._cholesky = torch.linalg.cholesky(self.covs)
        draws = self.means[k].clone()
        for component in k.unique():  # one matrix product per component, not a [U, U] factor per draw
            picked = k == component
            draws[picked] += temperature * eps[picked] @ self._cholesky[component].T
        return draws.float().reshape(*shape, *self.event_shape)


class FittedPrior(nn.Module):
    """A prior module for VAE.prior_net built from fitted mixture parameters (no trainable weights)."""

    def __init__(self, params: dict[str, Tensor], event_shape: tuple[int, ...]):
        super().__init__()
        self.params, self.latent_shape = params, tuple(event_shape)

    def forward(self, c, batch_size: int, like=None, shape=None, mask=None) -> FullGaussianMixture:
        if (shape is not None and tuple(shape) != self.latent_shape) or mask is not None:
            raise ValueError(f"the fitted sampler is over latents of shape {self.latent_shape}")
        p = self.params
        return FullGaussianMixture(p["weights"], p["means"], p["covs"], self.latent_shape, batch_size)


class PixelCNNLatents:
    """Draws from a fitted LatentPixelCNN, shaped like the model's prior: [batch_size, C, H, W]."""

    def __init__(self, net, batch_size: int):
        self.net, self.batch_size = net, batch_size
        self.event_shape, self.mask, self.event_dims = net.latent_shape, None, 3
        # the codes' per-channel mean: what `temperature` scales around has no closed form for this prior
        self.mean = net.shift.reshape(-1, 1, 1).expand(batch_size, *net.latent_shape)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (nats): z [B, C, H, W] -> [B]."""
        return self.net.log_prob(z)

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Draws [batch_size, C, H, W] (or [n, batch_size, C, H, W]); temperature scales each component's spread."""
        count = self.batch_size * (1 if n is None else n)
        draws = torch.cat([self.net.sample(min(1000, count - i), temperature) for i in range(0, count, 1000)])
        return draws if n is None else draws.reshape(n, self.batch_size, *self.event_shape)


class FittedPixelCNNPrior(nn.Module):
    """A prior module for VAE.prior_net around a fitted LatentPixelCNN (its weights are not trained further)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.latent_shape = net, tuple(net.latent_shape)

    def forward(self, c, batch_size: int, like=None, shape=None, mask=None) -> PixelCNNLatents:
        if (shape is not None and tuple(shape) != self.latent_shape) or mask is not None:
            raise ValueError(f"the fitted sampler is over latents of shape {self.latent_shape}")
        return PixelCNNLatents(self.net, batch_size)
