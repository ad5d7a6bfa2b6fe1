"""The ELBO family: β-ELBO with free bits, IWAE, β-TCVAE, InfoVAE, a plain autoencoder; the importance-sampled NLL.

Two ways in. Inside your own loop, call the functions on tensors you computed:

    terms = elbo(log_px_z, posterior, beta=0.5, free_bits=0.1)
    terms.loss.backward()

With a model that has `posterior(x, c)`, `prior(c, batch_size)` and `log_likelihood(x, z, c)` (any
vaekit.VAE), the objective classes do the sampling: `ELBO(schedule)(model, x, c, step)` and
`IWAE(k)(model, x, c, step)`; `iw_nll(model, x, k=5000)` estimates -log p(x) in chunks of samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..core.batch import batch_size
from ..core.distributions import DiagonalGaussian
from ..core.estimators import kl_decomposition, mmd
from .adversary import add_adversary_loss
from .cycle import add_cycle_loss
from .refine import refine_posterior
from .sampling import _sampled_terms, prior_for
from .schedules import KLSchedule


@dataclass
class ObjectiveTerms:
    """One batch's loss (scalar to minimise) and its parts, each per example in nats."""

    loss: Tensor
    elbo: Tensor  # [B] the true ELBO (β = 1, no free bits): a lower bound on log p(x)
    log_likelihood: Tensor  # [B] E_q[log p(x|z)]
    kl: Tensor  # [B] KL(q(z|x) || p(z))
    kl_per_dim: Tensor  # [U] batch mean of the KL per latent unit (empty when the KL is a Monte Carlo estimate)
    beta: float = 1.0
    extra: dict = field(default_factory=dict)  # an objective's own batch figures for logs (tc, mmd, ...)

    def scalars(self) -> dict[str, float]:
        """Batch means as floats for logs: loss, elbo, rec (nats), kl (nats), beta."""
        return {
            "loss": self.loss.item(),
            "elbo": self.elbo.mean().item(),
            "rec": -self.log_likelihood.mean().item(),
            "kl": self.kl.mean().item(),
            "beta": self.beta,
            **self.extra,
        }


def kl_divergence(posterior, prior, z: Tensor | None = None, log_qz: Tensor | None = None) -> Tensor:
    """KL(q || p) [*batch] nats: closed form between diagonal Gaussians, else log q(z) - log p(z) at samples z."""
    if isinstance(posterior, DiagonalGaussian) and (prior is None or isinstance(prior, DiagonalGaussian)):
        return posterior.kl(prior)
    if z is None:
        z, log_qz = posterior.rsample_and_log_prob()
    return (log_qz if log_qz is not None else posterior.log_prob(z)) - prior.log_prob(z)


def elbo(
    log_px_z: Tensor,
    posterior,
    prior=None,
    beta: float = 1.0,
    free_bits: float = 0.0,
    z: Tensor | None = None,
    log_qz: Tensor | None = None,
) -> ObjectiveTerms:
    """β-ELBO loss from log p(x|z) [B] and q(z|x); prior defaults to N(0, I); free bits in nats per unit.

    The KL is in closed form between diagonal Gaussians and the Monte Carlo estimate log q(z) - log p(z)
    at the sample z otherwise (a mixture prior, a flow posterior). Free bits (Kingma et al. 2016) replace
    each unit's batch-mean KL by max(KL_d, free_bits) in the loss, so the optimiser gains nothing by
    pushing a unit below the threshold; with a Monte Carlo KL there are no units, and the whole KL is
    held above free_bits times the number of units instead.
    """
    closed = isinstance(posterior, DiagonalGaussian) and (prior is None or isinstance(prior, DiagonalGaussian))
    if closed:
        kl_per_unit = posterior.kl_per_unit(prior)  # [B, U]
        kl = kl_per_unit.sum(-1)
        kl_dim_mean = kl_per_unit.mean(0)
        kl_term = kl_dim_mean.clamp(min=free_bits).sum() if free_bits > 0 else kl.mean()
    else:
        kl = kl_divergence(posterior, prior, z, log_qz)
        kl_dim_mean = kl.new_zeros(0)  # no per-unit split of a Monte Carlo KL
        units = math.prod(posterior.reduce_to_units(posterior.mean[:1]).shape[1:])
        kl_term = kl.mean().clamp(min=free_bits * units) if free_bits > 0 else kl.mean()
    loss = -log_px_z.mean() + beta * kl_term
    return ObjectiveTerms(loss, log_px_z - kl, log_px_z, kl, kl_dim_mean.detach(), beta)


def log_importance_weights(model, x, c: Tensor | None, k: int, posterior=None, prior=None) -> Tensor:
    """log p(x, z_i) - log q(z_i|x) for k posterior samples per example: [k, B] nats."""
    posterior, prior, z, log_qz, log_px_z = _sampled_terms(model, x, c, k, posterior, prior)
    return log_px_z + prior.log_prob(z) - log_qz


def iwae_bound(log_weights: Tensor) -> Tensor:
    """The IWAE bound log (1/k) sum_i w_i from log weights [k, B]: [B] nats."""
    return torch.logsumexp(log_weights, 0) - math.log(log_weights.shape[0])


@torch.no_grad()
def iw_nll(model, x, c: Tensor | None = None, k: int = 5000, chunk_size: int | None = None,
           refine_steps: int = 0) -> Tensor:
    """Importance-sampled -log p(x) [B] nats with k samples, decoded chunk_size samples at a time (bounded memory).

    refine_steps > 0 samples from q(z|x) refined per example (vaekit.objectives.refine): a tighter estimate, same model.

    The default chunk decodes about 256 examples at once whatever k and the batch size. Bigger chunks are
    slower on a CPU, not faster: their activations outgrow the allocator's cache and are returned to the
    OS and page-faulted back every chunk (MNIST conv VAE, k = 1000: 4,000 decoded at once 1.65x slower).
    """
    n = batch_size(x)
    chunk_size = chunk_size or max(1, 256 // n)
    posterior = model.posterior(x, c)  # encoded once, sampled per chunk
    prior = prior_for(model, c, n, posterior)
    if refine_steps > 0:
        posterior = refine_posterior(model, x, c, posterior, prior, refine_steps)
    chunk_lse = []
    for start in range(0, k, chunk_size):
        log_w = log_importance_weights(model, x, c, min(chunk_size, k - start), posterior, prior)
        chunk_lse.append(torch.logsumexp(log_w.double(), 0))
    return -(torch.logsumexp(torch.stack(chunk_lse), 0) - math.log(k)).float()


def condition_losses(terms: ObjectiveTerms, model, x, z: Tensor, c: Tensor | None, posterior) -> ObjectiveTerms:
    """terms with the CVAE's training-only condition terms added: the adversary's and the cycle's (when enabled)."""
    terms = add_adversary_loss(terms, model, z, c, posterior)
    return add_cycle_loss(terms, model, x, z, c)


class Objective:
    """A training objective: called with (model, x, c, step), returns ObjectiveTerms."""

    def __call__(self, model, x, c: Tensor | None = None, step: int = 0) -> ObjectiveTerms:
        raise NotImplementedError


class ELBO(Objective):
    """β-ELBO with a KL schedule (β per step) and free bits (nats per latent dimension)."""

    def __init__(self, schedule: KLSchedule | Callable[[int], float] | float = 1.0, free_bits: float = 0.0):
        self.schedule = schedule if callable(schedule) else KLSchedule.constant(float(schedule))
        self.free_bits = free_bits

    def __call__(self, model, x, c=None, step=0):
        terms, (posterior, _, z) = self.terms(model, x, c, step)
        return condition_losses(terms, model, x, z, c, posterior)

    def terms(self, model, x, c=None, step=0) -> tuple[ObjectiveTerms, tuple]:
        """The β-ELBO's terms and (posterior, prior, z) for subclasses that reweigh them."""
        posterior = model.posterior(x, c)
        z, log_qz = posterior.rsample_and_log_prob()
        log_px_z = model.log_likelihood(x, z, c)
        prior = prior_for(model, c, batch_size(x), posterior)
        beta = self.beta_for(step, posterior, prior, z, log_qz)
        terms = elbo(log_px_z, posterior, prior, beta=beta, free_bits=self.free_bits, z=z, log_qz=log_qz)
        return terms, (posterior, prior, z)

    def beta_for(self, step: int, posterior, prior, z: Tensor, log_qz: Tensor) -> float:
        """This batch's β: the schedule's at this step (a KL set-point reads the batch's KL instead)."""
        return self.schedule(step)


class IWAE(Objective):
    """The importance-weighted bound with k samples (Burda et al. 2015); loss = -bound."""

    def __init__(self, k: int = 5):
        self.k = k

    def __call__(self, model, x, c=None, step=0):
        posterior, prior, z, log_qz, log_px_z = _sampled_terms(model, x, c, self.k)
        bound = iwae_bound(log_px_z + prior.log_prob(z) - log_qz)
        terms = elbo(log_px_z[0], posterior, prior, z=z[0], log_qz=log_qz[0])  # for its KL and per-unit KL
        return ObjectiveTerms(-bound.mean(), bound, log_px_z.mean(0), terms.kl, terms.kl_per_dim, 1.0)


class BetaTCVAE(ELBO):
    """β-TCVAE (Chen et al. 2018): the KL split into MI + TC + dim-wise KL, with β (the schedule's) on the TC only.

    q(z) is estimated by minibatch-weighted sampling, which needs the training set's size N.
    """

    def __init__(self, schedule=1.0, dataset_size: int = 1, free_bits: float = 0.0):
        super().__init__(schedule, free_bits)
        self.dataset_size = dataset_size

    def __call__(self, model, x, c=None, step=0):
        terms, (posterior, prior, z) = self.terms(model, x, c, step)
        mi, tc, dwkl = kl_decomposition(z, posterior, prior, self.dataset_size)
        terms.loss = -terms.log_likelihood.mean() + (mi + terms.beta * tc + dwkl).mean()
        terms.extra = {"mi": mi.mean().item(), "tc": tc.mean().item(), "dwkl": dwkl.mean().item()}
        return condition_losses(terms, model, x, z, c, posterior)


class InfoVAE(ELBO):
    """InfoVAE (Zhao et al. 2017): rec + (1 - alpha) KL + (alpha + lambda - 1) MMD(q(z), p(z)).

    alpha = 1, lambda = 1 is the MMD-VAE / WAE-MMD: no KL at all, only the aggregate posterior matched to p.
    """

    def __init__(self, alpha: float = 0.0, lam: float = 1.0, kernel_scale: float = 1.0):
        super().__init__(1.0)
        self.alpha, self.lam, self.kernel_scale = alpha, lam, kernel_scale

    def __call__(self, model, x, c=None, step=0):
        terms, (posterior, prior, z) = self.terms(model, x, c, step)
        distance = mmd(z, prior.sample(), self.kernel_scale)
        terms.loss = -terms.log_likelihood.mean() + (1 - self.alpha) * terms.kl.mean() \
            + (self.alpha + self.lam - 1) * distance
        terms.extra = {"mmd": distance.item()}
        return condition_losses(terms, model, x, z, c, posterior)


class Autoencoder(Objective):
    """A plain autoencoder: decode the posterior mean, no noise and no KL (loss = -log p(x | mean)).

    The baseline behind a VAE's claim to generalise and to sample: `vaekit eval` and `vaekit sample` run on it
    too (its prior samples decode poorly: nothing pulled the codes towards N(0, I); a post-hoc sampler helps).
    """

    def __call__(self, model, x, c=None, step=0):
        posterior = model.posterior(x, c)
        code = posterior.mode()
        log_px_z = model.log_likelihood(x, code, c)
        zero = log_px_z.new_zeros(log_px_z.shape)
        terms = ObjectiveTerms(-log_px_z.mean(), log_px_z, log_px_z, zero, zero.new_zeros(0), 0.0)
        return condition_losses(terms, model, x, code, c, posterior)
