"""Learned priors beyond N(0, I): a mixture of Gaussians and the VampPrior (Tomczak & Welling 2018).

    model.prior_net = MixturePrior((32,), components=10)                 # p(z) = sum_k w_k N(mu_k, s_k^2)
    model.prior_net = VampPrior(model.encoder, pseudo_inputs)            # p(z) = 1/K sum_k q(z | u_k)

Neither has a closed-form KL to a Gaussian posterior, so the ELBO uses log q(z|x) - log p(z) at its sample
(vaekit.objectives.elbo.kl_divergence). Both act on a fixed-shape latent ([D], [C, H, W]), not a padded sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .distributions import LOG_2PI, LatentShape


class GaussianMixture(LatentShape):
    """sum_k w_k N(means_k, diag exp(logvars_k)) over a latent of event shape means.shape[1:], batch size n."""

    def __init__(self, means: Tensor, logvars: Tensor, logits: Tensor, batch_size: int):
        self.means, self.logvars, self.log_weights = means, logvars, F.log_softmax(logits, -1)
        self.event_dims = means.dim() - 1
        self.mask = None
        self.batch_size = batch_size
        weights = self.log_weights.exp().reshape(-1, *([1] * self.event_dims))
        self.mean = (weights * means).sum(0).expand(batch_size, *means.shape[1:])  # the mixture's mean

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) summed over the event (nats): z [..., *event] -> [...]."""
        lead = z.shape[:z.dim() - self.event_dims]
        # sum_d (z_d - m_kd)^2 / v_kd expanded into two matmuls: a [..., K, D] difference tensor would be K times
        # the size of z (a VampPrior's 500 components made the NLL at k = 1000 several times slower). float64
        # keeps the expansion's cancellation far below a nat's thousandth (MPS has no float64).
        dtype = torch.float32 if z.device.type == "mps" else torch.float64
        k = self.means.shape[0]
        flat = z.reshape(-1, self.means[0].numel()).to(dtype)
        means, logvars = self.means.reshape(k, -1).to(dtype), self.logvars.reshape(k, -1).to(dtype)
        precision = torch.exp(-logvars)
        squared = flat**2 @ precision.T - 2 * flat @ (means * precision).T + (means**2 * precision).sum(-1)
        per_component = -0.5 * (means.shape[1] * LOG_2PI + logvars.sum(-1) + squared)  # [N, K]
        log_p = torch.logsumexp(per_component + self.log_weights.to(dtype), -1)
        return log_p.reshape(lead).to(z.dtype)

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Draws [batch_size, *event] (or [n, batch_size, *event]): a component, then a point of it."""
        with torch.no_grad():
            shape = (self.batch_size,) if n is None else (n, self.batch_size)
            k = torch.distributions.Categorical(logits=self.log_weights).sample(shape)
            eps = torch.randn(*shape, *self.means.shape[1:], device=self.means.device, dtype=self.means.dtype)
            return self.means[k] + temperature * torch.exp(0.5 * self.logvars[k]) * eps

    def __repr__(self) -> str:
        return f"GaussianMixture(components={self.means.shape[0]}, event={tuple(self.means.shape[1:])})"


def _fixed_shape(prior: nn.Module, batch_size: int, like, shape, mask) -> int:
    """The batch size, after checking the asked-for latent is the prior's own fixed shape."""
    if mask is not None or (like is not None and like.mask is not None):
        raise ValueError(f"{type(prior).__name__} is over a fixed-shape latent, not a padded sequence")
    event = tuple(like.event_shape) if like is not None else tuple(shape) if shape is not None else None
    if event is not None and event != prior.latent_shape:
        raise ValueError(f"{type(prior).__name__} is over latents of shape {prior.latent_shape}, not {event}")
    return like.batch_shape[0] if like is not None else batch_size


class MixturePrior(nn.Module):
    """A learned mixture of K diagonal Gaussians; means start spread as N(0, I) draws, variances at 1."""

    def __init__(self, latent_shape: tuple[int, ...], components: int = 10, seed: int = 0):
        super().__init__()
        self.latent_shape = tuple(latent_shape)
        generator = torch.Generator().manual_seed(seed)
        self.means = nn.Parameter(torch.randn(components, *self.latent_shape, generator=generator))
        self.logvars = nn.Parameter(torch.zeros(components, *self.latent_shape))
        self.logits = nn.Parameter(torch.zeros(components))

    def forward(self, c: Tensor | None, batch_size: int, like=None, shape=None, mask=None) -> GaussianMixture:
        n = _fixed_shape(self, batch_size, like, shape, mask)
        return GaussianMixture(self.means, self.logvars, self.logits, n)


class VampPrior(nn.Module):
    """p(z) = 1/K sum_k q(z | u_k): the encoder's posteriors at K learned pseudo-inputs u_k (Tomczak & Welling 2018).

    The encoder is the VAE's own (held by reference, so its weights are saved once, under encoder.*);
    pseudo-inputs live in data space with the shape of one example and start at training examples.
    """

    def __init__(self, encoder: nn.Module, pseudo_inputs: Tensor, latent_shape: tuple[int, ...]):
        super().__init__()
        self._encoder = [encoder]  # a list keeps nn.Module from registering it a second time
        self.pseudo_inputs = nn.Parameter(pseudo_inputs.detach().clone().float())
        self.latent_shape = tuple(latent_shape)

    def forward(self, c: Tensor | None, batch_size: int, like=None, shape=None, mask=None) -> GaussianMixture:
        n = _fixed_shape(self, batch_size, like, shape, mask)
        q = self._encoder[0](self.pseudo_inputs, None)
        logits = torch.zeros(self.pseudo_inputs.shape[0], device=q.mean.device, dtype=q.mean.dtype)
        return GaussianMixture(q.mean, q.logvar, logits, n)

