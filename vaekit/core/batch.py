"""Helpers for data that is a tensor or a dict/list of tensors (tokens + lengths, mels + masks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def map_tensors(fn: Callable[[Tensor], Tensor], obj: Any) -> Any:
    """Apply fn to every tensor inside nested dicts, lists and tuples."""
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {key: map_tensors(fn, value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(fn, value) for value in obj)
    return obj


def first_tensor(obj: Any) -> Tensor:
    """The first tensor found in obj (depth first)."""
    if isinstance(obj, Tensor):
        return obj
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    for value in values:
        try:
            return first_tensor(value)
        except ValueError:
            continue
    raise ValueError(f"no tensor found in {type(obj).__name__}")


def batch_size(x: Any) -> int:
    """Number of examples in a batch (size of the first dimension of its first tensor)."""
    return first_tensor(x).shape[0]


def tile(x: Any, k: int) -> Any:
    """Repeat a batch k times along dim 0, sample-major: [B, ...] -> [k * B, ...]."""
    return map_tensors(lambda t: t.unsqueeze(0).expand(k, *t.shape).reshape(k * t.shape[0], *t.shape[1:]), x)


def to_device(obj: Any, device: torch.device | str) -> Any:
    """Move every tensor in obj to device (non-blocking where possible)."""
    return map_tensors(lambda t: t.to(device, non_blocking=True), obj)


def index(obj: Any, idx) -> Any:
    """Select examples idx (slice or index tensor) from every tensor in a batch."""
    return map_tensors(lambda t: t[idx], obj)
