"""Decoder likelihoods: each turns decoder outputs and data into log p(x|z) per example (nats).

A likelihood is an nn.Module so that a learned global scale trains with the model: make it an attribute of the
decoder (`self.likelihood = Gaussian(scale="learned")`), so that it is trained, saved and loaded with the
decoder's weights. Decoders emit `params_per_channel` times as many channels as the data has, along dim 1 (the
channel axis of images [B, C, H, W] and mels [B, n_mels, T], the feature axis of vectors [B, D]); the likelihood
splits them into equal halves along that axis. An optional mask (1 = counts, broadcastable to x) keeps padding
out.

log_prob(params, x, mask) sums over every axis of x but the first: params and x are [B, ...] (the same shape, but
for the extra parameters along dim 1) and the result is [B] nats, one number per example. mean(params) and
sample(params) are shaped like x.

    lik = get_likelihood("bernoulli")
    log_px_z = lik.log_prob(decoder_logits, x)          # [B] nats
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sum_per_example(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """Sum everything but the batch dimension, counting only where mask is nonzero: [B]."""
    if mask is not None:
        values = values * mask.to(values.dtype)
    return values.reshape(values.shape[0], -1).sum(-1)


class Likelihood(nn.Module):
    """Base class: log_prob(params, x, mask) -> [B] nats; mean(params) and sample(params) -> x-shaped."""

    params_per_channel = 1

    def split(self, params: Tensor) -> tuple[Tensor, ...]:
        """params cut into params_per_channel equal chunks along dim 1 (one chunk when it is 1)."""
        return params.chunk(self.params_per_channel, dim=1) if self.params_per_channel > 1 else (params,)

    def log_prob(self, params: Tensor, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p(x | params) per example: [B] nats, summed over every axis but the first where mask is nonzero."""
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """The distribution's mean (a decoder's `generate` usually returns it), shaped like x."""
        raise NotImplementedError

    def sample(self, params: Tensor) -> Tensor:
        """One draw per element, shaped like x."""
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Bernoulli over {0, 1} (or probabilities in [0, 1]) from logits."""

    def log_prob(self, params, x, mask=None):
        return sum_per_example(-F.binary_cross_entropy_with_logits(params, x, reduction="none"), mask)

    def mean(self, params):
        return torch.sigmoid(params)

    def sample(self, params):
        return torch.bernoulli(torch.sigmoid(params))


class _LocationScale(Likelihood):
    """Shared scale handling: fixed, one learned scalar, or predicted per element by the decoder."""

    def __init__(self, scale: float | str = 1.0):
        """scale: a positive number (a fixed scale), "learned" or "predicted"; anything else is a ValueError.

        - a number: every element has this scale; nothing is learned (the default, 1.0).
        - "learned": one scalar parameter (its log, starting at 0: scale 1) shared by every element of every
          example, trained with the model.
        - "predicted": the decoder gives a scale per element: params has twice x's size along dim 1, the first
          half the locations, the second the log-scales (clamped to [-9, 9]).
        """
        super().__init__()
        if scale == "predicted":
            self.params_per_channel = 2
        elif scale == "learned":
            self.log_scale = nn.Parameter(torch.zeros(()))
        elif isinstance(scale, (int, float)) and scale > 0:
            self.register_buffer("log_scale", torch.tensor(math.log(scale)), persistent=False)
        else:
            raise ValueError(f"scale must be a positive number, 'learned' or 'predicted', got {scale!r}")
        self.scale_kind = scale

    def loc_and_log_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """(location, log-scale), both shaped like x: the log-scale is fixed, learned or params' second half."""
        if self.params_per_channel == 2:
            loc, log_scale = self.split(params)
            return loc, log_scale.clamp(-9.0, 9.0)
        return params, self.log_scale.to(params.dtype).expand_as(params)

    def mean(self, params):
        """The location, shaped like x: params itself, or its first half along dim 1 with scale="predicted"."""
        return self.loc_and_log_scale(params)[0]


class Gaussian(_LocationScale):
    """Gaussian with fixed, learned or predicted standard deviation: Gaussian(scale=...).

    scale is a positive number (a fixed standard deviation; 1.0 by default), "learned" (one scalar standard
    deviation for all elements of all examples, a parameter trained with the model, starting at 1) or
    "predicted" (one per element, from the decoder: params carries 2 values per channel along dim 1, the means
    then the log standard deviations, clamped to [-9, 9]). Any other value is a ValueError.

        self.likelihood = Gaussian(scale="learned")          # in the decoder's __init__
        log_px_z = self.likelihood.log_prob(self.net(z), x)  # [B] nats: summed over all axes of x but the first
        x_mean = self.likelihood.mean(self.net(z))           # shaped like x
    """

    def log_prob(self, params, x, mask=None):
        """log N(x; mean, std^2) per example: [B] nats, summed over every axis but the first (where mask is
        nonzero). params and x are [B, ...] of one shape (params with 2x the size along dim 1 when predicted)."""
        loc, log_scale = self.loc_and_log_scale(params)
        z = (x - loc) * torch.exp(-log_scale)
        return sum_per_example(-0.5 * z**2 - log_scale - 0.5 * math.log(2 * math.pi), mask)

    def sample(self, params):
        """mean + std * noise, shaped like x."""
        loc, log_scale = self.loc_and_log_scale(params)
        return loc + torch.exp(log_scale) * torch.randn_like(loc)


class Laplace(_LocationScale):
    """Laplace with fixed, learned or predicted scale (robust to outliers, L1-like); scale= as for Gaussian."""

    def log_prob(self, params, x, mask=None):
        loc, log_scale = self.loc_and_log_scale(params)
        return sum_per_example(-(x - loc).abs() * torch.exp(-log_scale) - log_scale - math.log(2.0), mask)

    def sample(self, params):
        loc, log_scale = self.loc_and_log_scale(params)
        return torch.distributions.Laplace(loc, torch.exp(log_scale)).sample()


class DiscretizedLogistic(Likelihood):
    """Logistic discretised to 2**bits levels of data scaled to [-1, 1]; a true code length.

    log_prob is the log probability mass of each level, so -log_prob / (D ln 2) is bits/dim.
    The decoder predicts mean and log-scale per element (2 params per channel).
    """

    params_per_channel = 2

    def __init__(self, bits: int = 8):
        super().__init__()
        self.half_bin = 1.0 / (2**bits - 1)

    def log_prob(self, params, x, mask=None):
        mean, log_scale = self.split(params)
        log_scale = log_scale.clamp(min=-7.0)
        inv_scale = torch.exp(-log_scale)
        upper = inv_scale * (x - mean + self.half_bin)
        lower = inv_scale * (x - mean - self.half_bin)
        log_cdf_upper = F.logsigmoid(upper)  # used at the lowest level: mass of (-inf, x + half]
        log_one_minus_cdf_lower = -F.softplus(lower)  # used at the top level: mass of [x - half, inf)
        cdf_delta = torch.sigmoid(upper) - torch.sigmoid(lower)
        # Where the bin mass underflows, fall back to density * bin width (PixelCNN++ does the same).
        mid = inv_scale * (x - mean)
        log_pdf_mid = mid - log_scale - 2.0 * F.softplus(mid)
        log_mass = torch.where(
            cdf_delta > 1e-5,
            torch.log(cdf_delta.clamp(min=1e-12)),
            log_pdf_mid + math.log(2 * self.half_bin),
        )
        log_p = torch.where(
            x < -1 + self.half_bin,
            log_cdf_upper,
            torch.where(x > 1 - self.half_bin, log_one_minus_cdf_lower, log_mass),
        )
        return sum_per_example(log_p, mask)

    def mean(self, params):
        return self.split(params)[0].clamp(-1.0, 1.0)

    def sample(self, params):
        mean, log_scale = self.split(params)
        u = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
        x = mean + torch.exp(log_scale) * (torch.log(u) - torch.log1p(-u))
        levels = 1.0 / self.half_bin
        return torch.round((x.clamp(-1, 1) + 1) / 2 * levels) / levels * 2 - 1


class Categorical(Likelihood):
    """Categorical over a vocabulary: logits [B, T, V], targets [B, T]; pad positions never count."""

    def __init__(self, pad_id: int | None = None):
        super().__init__()
        self.pad_id = pad_id

    def log_prob(self, params, x, mask=None):
        log_p = -F.cross_entropy(params.movedim(-1, 1), x, reduction="none")
        if mask is None and self.pad_id is not None:
            mask = x != self.pad_id
        return sum_per_example(log_p, mask)

    def mean(self, params):
        return params.argmax(-1)

    def sample(self, params):
        return torch.distributions.Categorical(logits=params).sample()


LIKELIHOODS = {
    "bernoulli": Bernoulli,
    "gaussian": Gaussian,
    "laplace": Laplace,
    "discretized_logistic": DiscretizedLogistic,
    "categorical": Categorical,
}


def get_likelihood(name: str, **kwargs) -> Likelihood:
    """Build a likelihood by name: bernoulli, gaussian, laplace, discretized_logistic, categorical."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name](**kwargs)
