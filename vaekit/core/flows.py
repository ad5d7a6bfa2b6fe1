"""Inverse autoregressive flow on top of the diagonal Gaussian posterior (Kingma et al. 2016).

    encoder = IAFEncoder(plugin_encoder, units=32, depth=2)     # q(z|x): z_0 ~ N(mu, sigma^2), z = f_T(...f_1(z_0))

Each step is z <- m(z) + z * exp(a(z)) with m and a from a MADE (masked autoregressive network; Germain et
al. 2015) of z and the base posterior's parameters as context, and the ordering reversed between steps. The
last layer starts at zero, so a new flow is the identity and training starts from the diagonal VAE.
log q(z|x) = log q_0(z_0) - sum_t sum_d a_t,d: known for the flow's own samples, which is all the ELBO,
IWAE and the importance-sampled NLL need. Written here rather than taken from zuko (1.6.0 installs): the
engine depends on torch alone, zuko's flows are over flat vectors and would need this same
wrapping for shaped latents and padding masks, and the step itself is forty lines.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .distributions import DiagonalGaussian, LatentShape


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 connectivity mask."""

    def __init__(self, n_in: int, n_out: int, mask: Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    """One autoregressive affine step: output d depends only on inputs before d (in this step's order)."""

    def __init__(self, units: int, hidden: int, context: int, reverse: bool):
        super().__init__()
        order = torch.arange(units).flip(0) if reverse else torch.arange(units)  # input degree of each unit
        hidden_degree = torch.arange(hidden) % max(1, units - 1)
        self.inp = MaskedLinear(units, hidden, hidden_degree.unsqueeze(1) >= order.unsqueeze(0))
        self.context = nn.Linear(context, hidden)
        self.hid = MaskedLinear(hidden, hidden, hidden_degree.unsqueeze(1) >= hidden_degree.unsqueeze(0))
        out_mask = order.unsqueeze(1) > hidden_degree.unsqueeze(0)
        self.out = MaskedLinear(hidden, 2 * units, torch.cat([out_mask, out_mask]))
        nn.init.zeros_(self.out.weight)  # the identity at the start
        nn.init.zeros_(self.out.bias)

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """(f(z), log|det df/dz| per row) for rows z [N, U]."""
        h = torch.nn.functional.elu(self.inp(z) + self.context(context))
        shift, log_scale = self.out(torch.nn.functional.elu(self.hid(h))).chunk(2, -1)
        log_scale = 2.0 * torch.tanh(log_scale / 2.0)  # scales within e^-2..e^2: a step cannot blow up
        return shift + z * torch.exp(log_scale), log_scale.sum(-1)


class IAFPosterior(LatentShape):
    """q(z|x) = an IAF pushed through from a DiagonalGaussian base; samples come with their log-density."""

    def __init__(self, base: DiagonalGaussian, flow: IAF):
        self.base, self.flow = base, flow
        self.event_dims, self.mask = base.event_dims, base.mask
        self.mean = flow.transform(base, base.mean.unsqueeze(0))[0][0].detach()  # the image of the base mean

    @property
    def logvar(self) -> Tensor:
        return self.base.logvar

    def mode(self) -> Tensor:
        """The flow's image of the base mean (the point reconstructions decode)."""
        return self.mean

    def rsample_and_log_prob(self, n: int | None = None) -> tuple[Tensor, Tensor]:
        """Reparameterised sample(s) [(n,) *batch, *event] and log q(z|x) [(n,) *batch] (nats)."""
        z0 = self.base.rsample(1 if n is None else n)
        z, log_det = self.flow.transform(self.base, z0)
        log_q = self.base.log_prob(z0) - log_det
        return (z[0], log_q[0]) if n is None else (z, log_q)

    def rsample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        return self.rsample_and_log_prob(n)[0]

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        with torch.no_grad():
            return self.rsample(n)

    def __repr__(self) -> str:
        return f"IAFPosterior(batch={self.batch_shape}, event={self.event_shape}, steps={len(self.flow.steps)})"


class IAF(nn.Module):
    """depth IAF steps over a latent's units (the whole event, or D per valid step of a masked sequence)."""

    def __init__(self, units: int, depth: int = 2, hidden: int = 0):
        super().__init__()
        hidden = hidden or max(2 * units, 16)
        self.units = units
        self.steps = nn.ModuleList(IAFStep(units, hidden, 2 * units, reverse=i % 2 == 1) for i in range(depth))

    def transform(self, base: DiagonalGaussian, z0: Tensor) -> tuple[Tensor, Tensor]:
        """Push samples z0 [k, *batch, *event] through the flow: (z, log|det| [k, *batch]), padding left out."""
        k, batch_shape = z0.shape[0], base.batch_shape
        # a flow over D units on a [T, D] latent acts on each step's last axis (a sequence, masked or not)
        per_step = math.prod(base.event_shape) != self.units
        lead = base.mean.dim() - (1 if per_step else base.event_dims)
        context = torch.cat([base.mean, base.logvar], -1) if per_step else \
            torch.cat([base.mean.flatten(lead), base.logvar.flatten(lead)], -1)
        rows = z0.reshape(-1, self.units)
        context = context.unsqueeze(0).expand(k, *context.shape).reshape(rows.shape[0], -1)
        log_det = torch.zeros(rows.shape[0], device=rows.device, dtype=rows.dtype)
        for step in self.steps:
            rows, step_log_det = step(rows, context)
            log_det = log_det + step_log_det
        z = rows.reshape(z0.shape)
        if per_step:
            log_det = log_det.reshape(k, *base.mean.shape[:-1])
            if base.mask is not None:
                mask = base.mask.reshape(*base.mask.shape, *([1] * (base.mean.dim() - 1 - base.mask.dim())))
                log_det = log_det.masked_fill(~mask, 0.0)
            return z, log_det.sum(tuple(range(1 + len(batch_shape), log_det.dim())))
        return z, log_det.reshape(k, *batch_shape)


class IAFEncoder(nn.Module):
    """Wraps a plugin's encoder (x, c) -> DiagonalGaussian so that it returns an IAFPosterior."""

    def __init__(self, encoder: nn.Module, units: int, depth: int = 2, hidden: int = 0):
        super().__init__()
        self.base = encoder
        self.flow = IAF(units, depth, hidden)

    def forward(self, x, c: Tensor | None = None) -> IAFPosterior:
        return IAFPosterior(self.base(x, c), self.flow)
