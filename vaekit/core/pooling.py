"""One code vector per example from a latent: a vector latent as it is, a sequence pooled over its valid steps.

    codes = pool_steps(z, mask, segments=3)   # z [B, T, D], mask [B, T] (None: all valid) -> [B, (3 + 1) D]
    codes = pooled_code(q, segments=3)        # q(z|x) over [B, D]: its mean; over [B, T, D]: its means pooled

M1+M2 (vaekit.config.semi_supervised, vaekit.model.semi_supervised) reads a speech VAE's latent, one code per
32 ms, as one vector per recording: the mean code of each of `segments` equal stretches of the recording's valid
steps (in order, so "one" and "nine" differ by where their sounds are, not only by which sounds they hold), then
the standard deviation of the codes over all valid steps. Neither depends on the recording's padding.
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_weights(mask: Tensor, segments: int) -> Tensor:
    """[B, T] valid steps -> [B, segments, T] 0/1 weights: segment j holds the valid steps whose rank r among
    the L valid ones has floor(j L / k) <= r < floor((j + 1) L / k) (at least one step each, when L >= 1)."""
    valid = mask.to(torch.float64)
    length = valid.sum(1, keepdim=True)  # [B, 1]
    rank = valid.cumsum(1) - 1  # [B, T]: 0 .. L - 1 on valid steps
    j = torch.arange(segments, dtype=torch.float64, device=mask.device)[None, :, None]  # [1, k, 1]
    start = torch.floor(j * length[:, :, None] / segments)
    end = torch.maximum(torch.floor((j + 1) * length[:, :, None] / segments), start + 1)
    inside = (rank[:, None, :] >= start) & (rank[:, None, :] < end) & (valid[:, None, :] > 0)
    return inside.to(mask.dtype if mask.is_floating_point() else torch.float32)


def pool_steps(values: Tensor, mask: Tensor | None = None, segments: int = 1) -> Tensor:
    """[B, T, D] -> [B, (segments + 1) D]: the mean over each of `segments` equal stretches of an example's valid
    steps, in order, then the standard deviation (population) over all of its valid steps."""
    if values.dim() != 3:
        raise ValueError(f"pool_steps: expected values [B, T, D], got shape {tuple(values.shape)}")
    if segments < 1:
        raise ValueError(f"pool_steps: expected segments >= 1, got {segments}")
    mask = values.new_ones(values.shape[:2]) if mask is None else mask.to(values.dtype)
    weights = segment_weights(mask, segments).to(values.dtype)  # [B, k, T]
    means = weights @ values / weights.sum(-1, keepdim=True).clamp(min=1.0)  # [B, k, D]; no valid step: zeros
    weight = mask.unsqueeze(-1)  # [B, T, 1]
    count = weight.sum(1).clamp(min=1.0)
    mean = (values * weight).sum(1) / count
    variance = ((values - mean.unsqueeze(1)) ** 2 * weight).sum(1) / count
    return torch.cat([means.flatten(1), variance.clamp(min=1e-12).sqrt()], dim=-1)


def pooled_code(q, values: Tensor | None = None, segments: int = 1) -> Tensor:
    """One vector per example [B, D'] from a posterior q and values of its shape (default: its mean): a vector
    latent's values as they are, a sequence's pooled by pool_steps over q's valid steps; else a ValueError."""
    values = q.mean if values is None else values
    event_dims = q.event_dims
    if event_dims == 1:
        return values
    if event_dims == 2:
        return pool_steps(values, q.mask, segments)
    shape = tuple(values.shape[values.dim() - event_dims:])
    raise ValueError(f"one code per example comes from a vector latent [D] or a sequence [T, D] (pooled over "
                     f"time); this latent has shape {shape}")
