"""Diagonal Gaussians over latents with a shape: sampling, densities and KL divergences (nats).

A latent is [*batch, *event]: the event is the latent's own axes, [D] (a vector, the default),
[T, D] (a sequence, with an optional mask [B, T] for padded steps) or [C, H, W] (a feature map):

    q = DiagonalGaussian(mean, logvar)                                # [B, D]
    q = DiagonalGaussian(mean, logvar, event_dims=2, mask=valid)      # [B, T, D], valid [B, T]
    q = DiagonalGaussian(mean, logvar, event_dims=3)                  # [B, C, H, W]

Densities and KLs sum over the event's axes and never over padding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# exp(-30) to exp(20): wide enough for any trained posterior, narrow enough that exp() and the
# KL stay finite in fp32 and bf16 when an encoder emits a wild log-variance early in training.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
LOG_2PI = math.log(2 * math.pi)


class LatentShape:
    """What every latent distribution shares: event_dims trailing axes form the latent, mask marks padding.

    mask is a bool tensor [*batch, *event[:m]] (usually [B, T]): False positions are padding and are left
    out of every sum. Leading sample axes (z of shape [k, *batch, *event]) broadcast against it.
    """

    event_dims: int = 1
    mask: Tensor | None = None

    def reduce(self, values: Tensor) -> Tensor:
        """Sum per-coordinate values [..., *batch, *event] over the event, skipping padding: [..., *batch]."""
        mask = self.mask
        if mask is None:
            return values.sum(tuple(range(-self.event_dims, 0))) if self.event_dims else values
        masked_dims = mask.dim() - (self.mean.dim() - self.event_dims)  # event axes the mask covers
        inner = self.event_dims - masked_dims
        if inner:
            values = values.sum(tuple(range(-inner, 0)))
        values = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
        return values.sum(tuple(range(-masked_dims, 0))) if masked_dims else values

    def reduce_to_units(self, values: Tensor) -> Tensor:
        """Per-coordinate values [*batch, *event] -> [*batch, U]: summed over masked axes, the rest flattened.

        A unit is a latent coordinate that every example has: D for a vector or a masked sequence [T, D]
        (summed over its valid steps), C*H*W for a feature map.
        """
        batch_dims = values.dim() - self.event_dims
        if self.mask is not None:
            masked_dims = self.mask.dim() - (self.mean.dim() - self.event_dims)
            mask = self.mask.reshape(*self.mask.shape, *([1] * (self.event_dims - masked_dims)))
            values = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
            values = values.sum(tuple(range(batch_dims, batch_dims + masked_dims)))
        return values.reshape(*values.shape[:batch_dims], -1)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape[self.mean.dim() - self.event_dims:])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape[:self.mean.dim() - self.event_dims])


class DiagonalGaussian(LatentShape):
    """N(mean, diag(exp(logvar))) over the trailing event_dims axes; leading axes are the batch."""

    def __init__(self, mean: Tensor, logvar: Tensor, *, event_dims: int = 1, mask: Tensor | None = None):
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} differ in shape")
        if not 0 <= event_dims <= mean.dim():
            raise ValueError(f"event_dims={event_dims} for a mean of shape {tuple(mean.shape)}")
        batch_shape = tuple(mean.shape[:mean.dim() - event_dims])
        if mask is not None:
            mask = mask.bool()
            if tuple(mask.shape[:len(batch_shape)]) != batch_shape \
                    or tuple(mask.shape) != tuple(mean.shape[:mask.dim()]):
                raise ValueError(f"mask {tuple(mask.shape)} must be a prefix of the latent's shape "
                                 f"{tuple(mean.shape)} that covers its batch axes {batch_shape}")
        self.mean = mean
        self.logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        self.event_dims = event_dims
        self.mask = mask

    @classmethod
    def standard(cls, shape: tuple[int, ...], device=None, dtype=None, *, event_dims: int = 1,
                 mask: Tensor | None = None) -> DiagonalGaussian:
        """N(0, I) with the given batch + event shape."""
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return cls(zeros, zeros, event_dims=event_dims, mask=mask)

    def _like(self, mean: Tensor, logvar: Tensor, mask: Tensor | None) -> DiagonalGaussian:
        return DiagonalGaussian(mean, logvar, event_dims=self.event_dims, mask=mask)

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        return torch.exp(self.logvar)

    @property
    def dim(self) -> int:
        """Size of the last axis (D of a vector or sequence latent)."""
        return self.mean.shape[-1]

    def mode(self) -> Tensor:
        """The most likely point (the mean)."""
        return self.mean

    def rsample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Reparameterised sample(s): [*batch, *event], or [n, *batch, *event] when n is given."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + temperature * self.std * eps

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Sample(s) without gradient."""
        with torch.no_grad():
            return self.rsample(n, temperature)

    def rsample_and_log_prob(self, n: int | None = None) -> tuple[Tensor, Tensor]:
        """Reparameterised sample(s) and their log-density (nats), as flows give them."""
        z = self.rsample(n)
        return z, self.log_prob(z)

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; mean, var) summed over the event, padding left out (nats); z may carry leading sample axes."""
        return self.reduce(-0.5 * (LOG_2PI + self.logvar + (z - self.mean) ** 2 / self.var))

    def entropy(self) -> Tensor:
        """Differential entropy per batch element (nats)."""
        return self.reduce(0.5 * (1.0 + LOG_2PI + self.logvar))

    def kl_per_dim(self, other: DiagonalGaussian | None = None) -> Tensor:
        """KL(self || other) per latent coordinate (nats), other defaults to N(0, I): [*batch, *event]."""
        if other is None:
            return 0.5 * (self.var + self.mean**2 - 1.0 - self.logvar)
        return 0.5 * (
            other.logvar - self.logvar + (self.var + (self.mean - other.mean) ** 2) / other.var - 1.0
        )

    def kl_per_unit(self, other: DiagonalGaussian | None = None) -> Tensor:
        """KL(self || other) per unit (see reduce_to_units), padding left out: [*batch, U] nats."""
        return self.reduce_to_units(self.kl_per_dim(other))

    def kl(self, other: DiagonalGaussian | None = None) -> Tensor:
        """KL(self || other) summed over the event, padding left out (nats): [*batch]."""
        return self.reduce(self.kl_per_dim(other))

    def expand_like(self, reference: Tensor) -> DiagonalGaussian:
        """Broadcast mean and log-variance to the shape of reference (e.g. a batch of latents)."""
        return self._like(self.mean.expand_as(reference), self.logvar.expand_as(reference), self.mask)

    def __getitem__(self, index) -> DiagonalGaussian:
        mask = self.mask[index] if self.mask is not None else None
        return self._like(self.mean[index], self.logvar[index], mask)

    def __repr__(self) -> str:
        mask = ", masked" if self.mask is not None else ""
        return f"DiagonalGaussian(batch={self.batch_shape}, event={self.event_shape}{mask})"


def sequence_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """Bool mask [B, T] that is True on the first lengths[b] steps of each row."""
    max_length = int(lengths.max()) if max_length is None else max_length
    return torch.arange(max_length, device=lengths.device) < lengths.unsqueeze(-1)
