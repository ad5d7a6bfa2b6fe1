"""Paths through latent space for every plugin's `interpolate`: one meaning of --steps and --method.

    weights = path_weights(8)                        # 8 points, both ends included: 0, 1/7, ..., 1
    path = latent_path(z_a, z_b, 8, "slerp")         # [8, *z_a.shape]

`--steps N` is the number of decoded points on the path from a to b, both ends included (N >= 2), in every
plugin; `--method` is linear or slerp (White 2016: spherical interpolation keeps the path at the norm typical
of the prior's draws, where a straight line passes nearer the origin).
"""

from __future__ import annotations

import torch
from torch import Tensor

METHODS = ("linear", "slerp")


def path_weights(steps: int, device: torch.device | str | None = None) -> Tensor:
    """[steps] mixing weights t from 0 (a) to 1 (b), both ends included."""
    if steps < 2:
        raise ValueError(f"--steps: expected 2 or more points (both ends included), got {steps}")
    return torch.linspace(0.0, 1.0, steps, device=device)


def mix(a: Tensor, b: Tensor, t: float, method: str = "linear") -> Tensor:
    """The point a fraction t of the way from latent a to latent b (same shape), straight or on the great circle."""
    if method not in METHODS:
        raise ValueError(f"--method: expected linear or slerp, got {method!r}")
    if method == "linear":
        return (1 - t) * a + t * b
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)  # the whole latent is one point, whatever its shape
    cos = torch.nn.functional.cosine_similarity(flat_a, flat_b, dim=0).clamp(-1, 1)
    omega = torch.acos(cos)
    if float(omega) < 1e-4:  # nearly parallel: the great circle is the line
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def latent_path(a: Tensor, b: Tensor, steps: int, method: str = "linear") -> Tensor:
    """[steps, *a.shape]: `steps` points from a to b, both ends included."""
    return torch.stack([mix(a, b, float(t), method) for t in path_weights(steps)])


def parse_dims(dims: str | list[int] | None, units: int) -> list[int]:
    """`--dims 0,2,5` (or [0, 2, 5]) -> [0, 2, 5], checked against a latent of `units` units; None -> all."""
    if dims is None:
        return list(range(units))
    if isinstance(dims, str):
        try:
            dims = [int(v) for v in dims.split(",")]
        except ValueError:
            raise ValueError(f"--dims: expected comma-separated integers, e.g. 0,1,2, got {dims!r}") from None
    bad = [d for d in dims if not 0 <= d < units]
    if bad:
        raise ValueError(f"--dims: {bad} outside 0-{units - 1}")
    return dims


def traversal_values(span: float, steps: int, device: torch.device | str | None = None) -> Tensor:
    """[steps] offsets a traversed unit is moved by from its base value, from -span to span, both ends included."""
    return span * (2 * path_weights(steps, device) - 1)


def traversal(base: Tensor, dims: list[int], span: float, steps: int, per_step: bool = False) -> Tensor:
    """[len(dims) * steps, *base.shape]: row by row, unit d of base moved by `steps` offsets from -span to span
    around its own value, every other unit kept (Higgins et al. 2017's picture of what each unit does).

    The offset 0 (the middle of an odd number of steps) is base itself: an input's traversal passes through its
    own reconstruction. A unit is one of the flattened coordinates; with per_step (a latent with a time axis,
    [T, D]) it is one of the D units of every step, moved at all steps together.
    """
    values = traversal_values(span, steps, base.device)
    flat = base.reshape(-1, base.shape[-1]) if per_step else base.reshape(1, -1)
    z = flat.repeat(len(dims) * steps, 1, 1)
    for row, d in enumerate(dims):
        z[row * steps:(row + 1) * steps, :, d] = flat[:, d] + values[:, None]
    return z.reshape(-1, *base.shape)
