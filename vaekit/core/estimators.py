"""Batch estimators behind the ELBO's relatives: the KL's decomposition (β-TCVAE) and the MMD (InfoVAE), nats.

    mi, tc, dwkl = kl_decomposition(z, posterior, prior, dataset_size)   # Chen et al. 2018, minibatch-weighted
    distance = mmd(z_q, z_p)                                              # Gretton et al. 2012, IMQ kernel
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .distributions import LOG_2PI, DiagonalGaussian


def _flat(posterior: DiagonalGaussian) -> tuple[Tensor, Tensor]:
    if not isinstance(posterior, DiagonalGaussian) or posterior.mask is not None:
        raise ValueError("the total-correlation estimate needs a diagonal Gaussian posterior over a fixed-shape "
                         "latent (not a flow, not a padded sequence)")
    n = posterior.mean.shape[0]
    return posterior.mean.reshape(n, -1), posterior.logvar.reshape(n, -1)


def kl_decomposition(z: Tensor, posterior: DiagonalGaussian, prior, dataset_size: int
                     ) -> tuple[Tensor, Tensor, Tensor]:
    """Index-code MI, total correlation and dimension-wise KL per example [B] (nats), as Chen et al. 2018.

    KL(q(z|x) || p(z)) averaged over data = MI + TC + dim-wise KL. The aggregate posterior q(z) and its
    marginals q(z_d) are estimated by minibatch-weighted sampling: log q(z_i) ~ logsumexp_j log q(z_i|x_j)
    - log(N M), N the data set's size and M the batch's. The prior must factorise over units (a Gaussian).
    """
    mean, logvar = _flat(posterior)
    m = mean.shape[0]
    zf = z.reshape(m, -1)
    # log q(z_i,d | x_j,d) for every pair (i, j) and unit d: [M, M, U]
    pair = -0.5 * (LOG_2PI + logvar.unsqueeze(0) + (zf.unsqueeze(1) - mean.unsqueeze(0)) ** 2
                   * torch.exp(-logvar.unsqueeze(0)))
    log_nm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(pair.sum(-1), 1) - log_nm  # [M]
    log_prod_marginals = (torch.logsumexp(pair, 1) - log_nm).sum(-1)  # [M]
    log_qz_x = posterior.log_prob(z)
    log_pz = prior.log_prob(z) if prior is not None else \
        (-0.5 * (LOG_2PI + zf**2)).sum(-1)
    return log_qz_x - log_qz, log_qz - log_prod_marginals, log_prod_marginals - log_pz


def mmd(a: Tensor, b: Tensor, scale: float = 1.0) -> Tensor:
    """Unbiased squared MMD between samples a [N, ...] and b [M, ...] with an inverse multiquadratic kernel.

    k(x, y) = C / (C + |x - y|^2), C = 2 U scale^2 for U units (Tolstikhin et al. 2018; pythae's imq). Zero
    in expectation when a and b come from one distribution; > 0 when they differ.
    """
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    c = 2.0 * a.shape[1] * scale**2

    def kernel(x, y):
        return c / (c + torch.cdist(x, y).pow(2))

    n, m = a.shape[0], b.shape[0]
    k_aa, k_bb = kernel(a, a), kernel(b, b)
    off_aa = (k_aa.sum() - k_aa.diagonal().sum()) / (n * (n - 1))
    off_bb = (k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return off_aa + off_bb - 2.0 * kernel(a, b).mean()
