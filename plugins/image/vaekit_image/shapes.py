"""Procedural shapes, dSprites-like: white shapes on black generated from (seed, split, index)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .pixels import lowres

SHAPE_NAMES = ["square", "ellipse", "heart"]
SHAPE_FACTORS = {"shape": 3, "scale": 6, "rotation": 40, "x": 32, "y": 32}  # dSprites' factor sizes


class ShapesDataset(Dataset):
    """Procedural white shapes on black: factors shape, scale, rotation, x, y drawn from (seed, split, index).

    Every image is drawn once, all together, when the data set is made (uint8, 1 KiB per item at 32x32), so a
    training step only indexes a tensor instead of drawing 64 shapes in Python.
    """

    def __init__(self, indices: list[int], seed: int, split: int, size: int = 32, condition: str = "none",
                 lowres_factor: int = 4):
        self.indices, self.seed, self.split, self.size = indices, seed, split, size  # item i draws from indices[i]
        self.condition, self.lowres_factor = condition, lowres_factor
        coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
        self.grid_y, self.grid_x = torch.meshgrid(coords, coords, indexing="ij")
        self.levels = torch.tensor([self._draw(i) for i in indices], dtype=torch.long).reshape(len(indices), 5)
        self.images = torch.cat([self._render_levels(chunk) for chunk in self.levels.split(256)]) \
            if len(indices) else torch.zeros(0, 1, size, size, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.indices)

    def _draw(self, source_index: int) -> list[int]:
        """The factor levels of generated example source_index, from its own seeded generator."""
        rng = np.random.default_rng([self.seed, self.split, source_index])
        return [int(rng.integers(n)) for n in SHAPE_FACTORS.values()]

    def factors(self, index: int) -> dict[str, int]:
        """The generating factors of item index as level indices (dSprites' sizes: 3, 6, 40, 32, 32)."""
        return dict(zip(SHAPE_FACTORS, self.levels[index].tolist(), strict=True))

    def render(self, factors: dict[str, int]) -> Tensor:
        """A binary image [1, size, size] of the shape with the given factor levels."""
        levels = torch.tensor([[factors[name] for name in SHAPE_FACTORS]])
        return self._render_levels(levels)[0].float() / 255.0

    def _render_levels(self, levels: Tensor) -> Tensor:
        """uint8 images [N, 1, size, size] in {0, 255} for factor levels [N, 5] (columns in SHAPE_FACTORS' order)."""
        shape_level, scale_level, rotation, x, y = (levels[:, k, None, None].double() for k in range(5))
        scale = 0.5 + 0.5 * scale_level / (SHAPE_FACTORS["scale"] - 1)
        angle = 2 * math.pi * rotation / SHAPE_FACTORS["rotation"]
        cx = -0.45 + 0.9 * x / (SHAPE_FACTORS["x"] - 1)
        cy = -0.45 + 0.9 * y / (SHAPE_FACTORS["y"] - 1)
        radius = 0.7 * scale  # in half-image units: 5 to 11 pixels at 32x32, big enough to tell shapes apart
        dx, dy = self.grid_x - cx, self.grid_y - cy
        u = (torch.cos(angle) * dx + torch.sin(angle) * dy) / radius
        v = (-torch.sin(angle) * dx + torch.cos(angle) * dy) / radius
        inside = torch.zeros(u.shape, dtype=torch.bool)
        for level, name in enumerate(SHAPE_NAMES):  # each image evaluates its own shape's inequality only
            rows = (levels[:, 0] == level).nonzero()[:, 0]
            inside[rows] = shape_mask(name, u[rows], v[rows])
        return (inside.to(torch.uint8) * 255)[:, None]

    def __getitem__(self, index: int) -> dict:
        x = self.images[index].float() / 255.0
        shape = self.levels[index, 0]
        item = {"x": x, "label": shape}  # for `vaekit encode --split` maps
        if self.condition == "label":
            item["c"] = shape
        elif self.condition == "lowres":
            item["c"] = lowres(x[None], self.lowres_factor)[0]
        return item


def shape_mask(name: str, u: Tensor, v: Tensor) -> Tensor:
    """Which points (u, v), in units of the shape's radius around its centre, lie inside the named shape."""
    if name == "square":
        return torch.maximum(u.abs(), v.abs()) <= 0.7
    if name == "ellipse":
        return u**2 + (v / 0.55) ** 2 <= 1.0
    return heart_mask(u, -v + (HEART_LOBE_RADIUS - HEART_TIP) / 2)  # its box centred, pointing down in the image


HEART_LOBE_CENTRE, HEART_LOBE_RADIUS, HEART_TIP = 0.5, 0.5, 1.3  # lobes at (+-0.5, 0), the point at (0, -1.3)


def heart_tangent() -> tuple[float, float]:
    """Where the line from the heart's point touches the outside of its right lobe: (x, y)."""
    centre_x, radius, tip = HEART_LOBE_CENTRE, HEART_LOBE_RADIUS, HEART_TIP
    to_centre = math.hypot(centre_x, tip)
    angle = math.atan2(tip, centre_x) - math.asin(radius / to_centre)  # the centre's direction turned outwards
    reach = math.sqrt(to_centre**2 - radius**2)
    return reach * math.cos(angle), reach * math.sin(angle) - tip


def heart_mask(x: Tensor, y: Tensor) -> Tensor:
    """A heart of two round lobes that touch, a notch half a radius deep between them, a sharp point below (y up).

    Straight sides run from the point to touch the lobes; the notch and the point stay a few pixels across even at
    the smallest scale, so a heart never reads as a rounded triangle.
    """
    tangent_x, tangent_y = heart_tangent()
    lobes = (x.abs() - HEART_LOBE_CENTRE) ** 2 + y**2 <= HEART_LOBE_RADIUS**2
    sides = (y >= -HEART_TIP) & (y <= tangent_y) & (x.abs() <= (y + HEART_TIP) * tangent_x / (tangent_y + HEART_TIP))
    between = (x.abs() <= HEART_LOBE_CENTRE) & (y >= tangent_y) & (y <= 0)  # under the notch, between the lobes
    return lobes | sides | between
