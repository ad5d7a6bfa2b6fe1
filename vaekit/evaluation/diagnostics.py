"""Latent-space diagnostics: KL per unit, active units and mutual information I(x; z) (nats).

They take latents with a shape (see vaekit.core.distributions): a unit is a coordinate every example has,
D for a vector or a masked sequence [T, D] (its valid steps pooled), C*H*W for a feature map.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.distributions import LOG_2PI, DiagonalGaussian


def unit_means(posterior) -> Tensor:
    """Posterior means as rows of units [N, U]: one row per example, or per valid step of a masked sequence."""
    mean = posterior.mean
    if posterior.mask is None:
        return mean.reshape(mean.shape[0], -1)
    steps = mean[posterior.mask]  # [valid positions, *the axes the mask does not cover]
    return steps.reshape(steps.shape[0], -1)


def active_units(posterior_means: Tensor, threshold: float = 0.01) -> tuple[int, Tensor]:
    """Count units whose posterior mean varies across data: Cov_x(E_q[z_d]) > threshold (Burda et al.).

    posterior_means is [N, U] over a data set (unit_means gives it for shaped latents); returns the count
    and the per-unit variances.
    """
    variances = posterior_means.double().var(0, unbiased=True) if posterior_means.shape[0] > 1 \
        else torch.zeros(posterior_means.shape[-1], dtype=torch.float64)
    return int((variances > threshold).sum()), variances.float()


def _rows(posterior: DiagonalGaussian) -> tuple[Tensor, Tensor]:
    """(mean, logvar) as rows [N, U]: examples for fixed shapes, valid steps for a masked sequence."""
    if posterior.mask is None:
        n = posterior.mean.shape[0]
        return posterior.mean.reshape(n, -1), posterior.logvar.reshape(n, -1)
    means = unit_means(posterior)
    logvars = unit_means(DiagonalGaussian(posterior.logvar, posterior.logvar, event_dims=posterior.event_dims,
                                          mask=posterior.mask))
    return means, logvars


def mutual_information(posterior: DiagonalGaussian) -> float:
    """I(x; z) under q for one batch, as He et al. 2019 estimate it (nats).

    I = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)], with the aggregate posterior q(z) approximated by
    the mixture of the batch's posteriors. A fixed-shape latent is one vector per example; for a masked
    sequence each valid step is a draw of (x, z_t), so this is I(x; z_t) per step.
    """
    mean, logvar = (t.double() for t in _rows(posterior))
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
    """Mean KL(q(z|x) || p(z)) per unit over a batch, padding left out: [U] nats."""
    per_unit = posterior.kl_per_unit(prior)
    return per_unit.reshape(-1, per_unit.shape[-1]).mean(0)
