"""Latent-space diagnostics: KL per dimension, active units and mutual information I(x; z) (nats)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .distributions import LOG_2PI, DiagonalGaussian


def active_units(posterior_means: Tensor, threshold: float = 0.01) -> tuple[int, Tensor]:
    """Count dimensions whose posterior mean varies across data: Cov_x(E_q[z_d]) > threshold (Burda et al.).

    posterior_means is [N, D] over a data set; returns the count and the per-dimension variances.
    """
    variances = posterior_means.double().var(0, unbiased=True) if posterior_means.shape[0] > 1 \
        else torch.zeros(posterior_means.shape[-1], dtype=torch.float64)
    return int((variances > threshold).sum()), variances.float()


def mutual_information(posterior: DiagonalGaussian) -> float:
    """I(x; z) under q for one batch, as He et al. 2019 estimate it (nats).

    I = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)], with the aggregate posterior q(z)
    approximated by the mixture of the batch's posteriors.
    """
    mean, logvar = posterior.mean.double(), posterior.logvar.double()
    n, d = mean.shape
    neg_entropy = (-0.5 * d * LOG_2PI - 0.5 * (1 + logvar).sum(-1)).mean()
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)  # one sample per x: [N, D]
    dev = z.unsqueeze(1) - mean.unsqueeze(0)  # [N (samples), N (components), D]
    log_density = -0.5 * (dev**2 / torch.exp(logvar).unsqueeze(0)).sum(-1) - 0.5 * (
        d * LOG_2PI + logvar.sum(-1).unsqueeze(0)
    )
    log_qz = torch.logsumexp(log_density, dim=1) - math.log(n)
    return float(neg_entropy - log_qz.mean())


def kl_per_dimension(posterior: DiagonalGaussian, prior: DiagonalGaussian | None = None) -> Tensor:
    """Mean KL(q(z|x) || p(z)) per latent dimension over a batch: [D] nats."""
    return posterior.kl_per_dim(prior).reshape(-1, posterior.dim).mean(0)
