"""The sampling every objective and estimator shares: a model's prior shaped like its posterior, and k draws
z ~ q(z|x) with their log q(z|x) and log p(x|z).

    posterior, prior, z, log_qz, log_px_z = _sampled_terms(model, x, c, k=16)

Its own module so that the ELBO family (vaekit.objectives.elbo) and per-example refinement
(vaekit.objectives.refine, which the importance-sampled NLL calls) both build on it, one above the other.
"""

from __future__ import annotations

import inspect

from torch import Tensor

from ..core.batch import batch_size, tile


def prior_for(model, c: Tensor | None, n: int, posterior):
    """model.prior with the posterior's latent shape and mask; models whose prior takes no `like` get (c, n)."""
    prior = model.prior
    if "like" in inspect.signature(prior).parameters:
        return prior(c, n, like=posterior)
    return prior(c, n)


def _sampled_terms(model, x, c: Tensor | None, k: int, posterior=None, prior=None):
    """q(z|x), p(z|c), k samples z [k, B, *event], log q(z|x) and log p(x|z) [k, B]; q and p computed unless given."""
    n = batch_size(x)
    posterior = posterior if posterior is not None else model.posterior(x, c)
    z, log_qz = posterior.rsample_and_log_prob(k)
    prior = prior if prior is not None else prior_for(model, c, n, posterior)
    c_k = tile(c, k) if c is not None else None
    log_px_z = model.log_likelihood(tile(x, k), z.reshape(k * n, *z.shape[2:]), c_k).reshape(k, n)
    return posterior, prior, z, log_qz, log_px_z
