"""Diagonal Gaussians over the latent space: sampling, densities and KL divergences (nats)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

# exp(-30) to exp(20): wide enough for any trained posterior, narrow enough that exp() and the
# KL stay finite in fp32 and bf16 when an encoder emits a wild log-variance early in training.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) over the last dimension; leading dimensions are the batch."""

    def __init__(self, mean: Tensor, logvar: Tensor):
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} differ in shape")
        self.mean = mean
        self.logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    @classmethod
    def standard(cls, shape: tuple[int, ...], device=None, dtype=None) -> DiagonalGaussian:
        """N(0, I) with the given batch + latent shape."""
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return cls(zeros, zeros)

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        return torch.exp(self.logvar)

    @property
    def dim(self) -> int:
        return self.mean.shape[-1]

    def mode(self) -> Tensor:
        """The most likely point (the mean)."""
        return self.mean

    def rsample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Reparameterised sample(s): [*batch, D], or [n, *batch, D] when n is given."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + temperature * self.std * eps

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Sample(s) without gradient."""
        with torch.no_grad():
            return self.rsample(n, temperature)

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; mean, var) summed over the latent dimension (nats); z may carry extra leading dims."""
        return (-0.5 * (LOG_2PI + self.logvar + (z - self.mean) ** 2 / self.var)).sum(-1)

    def entropy(self) -> Tensor:
        """Differential entropy per batch element (nats)."""
        return (0.5 * (1.0 + LOG_2PI + self.logvar)).sum(-1)

    def kl_per_dim(self, other: DiagonalGaussian | None = None) -> Tensor:
        """KL(self || other) per latent dimension (nats), other defaults to N(0, I): [*batch, D]."""
        if other is None:
            return 0.5 * (self.var + self.mean**2 - 1.0 - self.logvar)
        return 0.5 * (
            other.logvar - self.logvar + (self.var + (self.mean - other.mean) ** 2) / other.var - 1.0
        )

    def kl(self, other: DiagonalGaussian | None = None) -> Tensor:
        """KL(self || other) summed over latent dimensions (nats): [*batch]."""
        return self.kl_per_dim(other).sum(-1)

    def expand_like(self, reference: Tensor) -> DiagonalGaussian:
        """Broadcast mean and log-variance to the shape of reference (e.g. a batch of latents)."""
        return DiagonalGaussian(self.mean.expand_as(reference), self.logvar.expand_as(reference))

    def __getitem__(self, index) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean[index], self.logvar[index])

    def __repr__(self) -> str:
        return f"DiagonalGaussian(batch={tuple(self.mean.shape[:-1])}, dim={self.dim})"
