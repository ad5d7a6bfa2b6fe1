"""vaekit-points: the smallest useful vaekit plugin — a VAE over rows of numbers (2-D points by default).

    pip install -e examples/vaekit-points
    vaekit train examples/vaekit-points/points.yaml
    vaekit sample runs/points -n 500          # -> samples.csv

Data: `moons` (two interleaved half circles, generated from the seed) or `csv` (a file of numeric rows).
A CLI input (`vaekit reconstruct RUN FILE...`) is a CSV file of such rows, every row reconstructed. Engine names
come from vaekit.plugin_api, the plugin contract's one stable module.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vaekit.plugin_api import (
    VAE,
    DataBundle,
    DemoKinds,
    DiagonalGaussian,
    Gaussian,
    Plugin,
    RecipeError,
    atomic_open,
)


@dataclass
class PointsData:
    """The recipe's data section."""

    source: Literal["moons", "csv"] = "moons"
    path: str | None = field(default=None, metadata={"must_exist": True})  # for source: csv
    n_train: int = 2000
    n_val: int = 500
    noise: float = 0.05


@dataclass
class PointsModel:
    """The recipe's model section."""

    latent_dim: int = 2
    hidden: int = 64


def moons(n: int, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Two interleaved half circles with Gaussian noise: [n, 2]."""
    t = torch.rand(n, generator=generator) * math.pi
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    return torch.stack([x, y], 1) + noise * torch.randn(n, 2, generator=generator)


def read_csv(path: str) -> torch.Tensor:
    """Numeric rows of a CSV file (a header row is skipped): [n, columns]."""
    rows = []
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if line_no == 1:
                    continue  # header
                raise ValueError(f"{path}:{line_no}: expected numbers, got {row}") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: expected rows of equal length with at least one row")
    return torch.tensor(rows)


class Rows(torch.utils.data.Dataset):
    def __init__(self, points: torch.Tensor):
        self.points = points

    def __len__(self):
        return len(self.points)

    def __getitem__(self, i):
        return {"x": self.points[i]}


class Encoder(nn.Module):
    def __init__(self, dim: int, cfg: PointsModel):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim))

    def forward(self, x, c=None):
        mean, logvar = self.net(x).chunk(2, -1)
        return DiagonalGaussian(mean, logvar)


class Decoder(nn.Module):
    def __init__(self, dim: int, cfg: PointsModel):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, dim))
        self.likelihood = Gaussian(scale="learned")

    def log_prob(self, x, z, c=None):
        return self.likelihood.log_prob(self.net(z), x)

    def generate(self, z, c=None):
        return self.likelihood.mean(self.net(z))


def write_csv(points: torch.Tensor, path: Path) -> Path:
    with atomic_open(path, "w", newline="") as f:  # never through a link in the run folder
        csv.writer(f).writerows(points.tolist())
    return path


class PointsPlugin(Plugin):
    name = "points"
    description = "VAE over rows of numbers (2-D point clouds, tabular CSV)"
    data_config = PointsData
    model_config = PointsModel
    demo_kinds = DemoKinds(input="table", output="table")  # `vaekit demo`: rows typed in, CSV rows shown

    def build_data(self, data, *, seed, assets):
        if data.source == "csv":
            if data.path is None:
                raise RecipeError("data.path: required when data.source is csv")
            points = read_csv(data.path)
            cut = max(1, int(0.9 * len(points)))
            train, val = points[:cut], points[cut:]
        else:
            g = torch.Generator().manual_seed(seed)
            train, val = moons(data.n_train, data.noise, g), moons(data.n_val, data.noise, g)
        return DataBundle(Rows(train), Rows(val), Rows(val), info={"dim": train.shape[1]})

    def build_model(self, model, info, *, assets):
        return VAE(Encoder(info["dim"], model), Decoder(info["dim"], model), model.latent_dim)

    def sample(self, model, n, condition, out_dir, temperature=1.0, **options):
        return [write_csv(model.sample(n, temperature=temperature).cpu(), Path(out_dir) / "samples.csv")]

    def reconstruct(self, model, inputs, condition, out_dir, **options):
        points = torch.cat([read_csv(p) for p in inputs]).to(model.device)
        return [write_csv(model.reconstruct(points).cpu(), Path(out_dir) / "reconstructions.csv")]


plugin = PointsPlugin()
