"""A tiny in-process plugin (2-D points, optionally labelled) for the recipe, checkpoint and VAE tests.

It has its own typed configs (a Literal, an optional path that must exist, a validated field), keeps a
file in `assets` that build_model reads back, and a learned likelihood scale so that every kind of
state a real plugin has goes through save_pretrained / vaekit.load.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import torch
from torch import nn

import vaekit
import vaekit.plugin
from vaekit import ConditionEmbedding, DataBundle, DiagonalGaussian, LearnedConditionalPrior, Plugin, get_likelihood

PLUGIN_NAME = "enginetest_points"


@dataclass
class PointsData:
    """Points on a noisy ring or two moons, labelled by angle sector."""

    n_points: int = 64
    shape: Literal["ring", "moons"] = "ring"
    noise: float = 0.05
    num_classes: int = 3
    file: str | None = field(default=None, metadata={"must_exist": True})  # optional extra points (unused)


@dataclass
class PointsModel:
    """A two-layer MLP encoder and decoder."""

    latent_dim: int = 2
    hidden: int = 16
    likelihood: Literal["gaussian", "laplace"] = "gaussian"
    conditional: bool = False
    conditional_prior: bool = False
    layers: list[int] = field(default_factory=lambda: [16])

    def __post_init__(self):
        if self.latent_dim <= 0:
            raise ValueError(f"latent_dim must be positive, got {self.latent_dim}")


class PointsEncoder(nn.Module):
    def __init__(self, cfg: PointsModel, embedding: ConditionEmbedding | None, center: torch.Tensor):
        super().__init__()
        extra = embedding.out_dim if embedding is not None else 0
        self.embedding = embedding
        self.net = nn.Sequential(nn.Linear(2 + extra, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim))
        self.register_buffer("center", center, persistent=False)  # from assets, not from the weights

    def forward(self, x, c=None):
        h = x - self.center
        if self.embedding is not None:
            h = torch.cat([h, self.embedding(c)], dim=-1)
        mean, logvar = self.net(h).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)


class PointsDecoder(nn.Module):
    def __init__(self, cfg: PointsModel, embedding: ConditionEmbedding | None, center: torch.Tensor):
        super().__init__()
        extra = embedding.out_dim if embedding is not None else 0
        self.embedding = embedding
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim + extra, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, 2))
        self.likelihood = get_likelihood(cfg.likelihood, scale="learned")
        self.register_buffer("center", center, persistent=False)

    def mean(self, z, c=None):
        if self.embedding is not None:
            z = torch.cat([z, self.embedding(c)], dim=-1)
        return self.net(z) + self.center

    def log_prob(self, x, z, c=None):
        return self.likelihood.log_prob(self.mean(z, c), x)

    def generate(self, z, c=None):
        return self.mean(z, c)


class PointsDataset(torch.utils.data.Dataset):
    def __init__(self, points, labels):
        self.points, self.labels = points, labels

    def __len__(self):
        return len(self.points)

    def __getitem__(self, i):
        return {"x": self.points[i], "c": self.labels[i]}


class PointsPlugin(Plugin):
    name = PLUGIN_NAME
    description = "2-D points for the engine's own tests"
    data_config = PointsData
    model_config = PointsModel

    def build_data(self, data: PointsData, *, seed: int, assets: Path) -> DataBundle:
        generator = torch.Generator().manual_seed(seed)
        angle = 2 * math.pi * torch.rand(data.n_points, generator=generator)
        points = torch.stack([angle.cos(), angle.sin()], -1) + data.noise * torch.randn(data.n_points, 2,
                                                                                         generator=generator)
        labels = (angle / (2 * math.pi) * data.num_classes).long().clamp(max=data.num_classes - 1)
        center = points.mean(0)
        Path(assets).mkdir(parents=True, exist_ok=True)
        (Path(assets) / "center.json").write_text(json.dumps(center.tolist()))
        split = data.n_points // 2
        return DataBundle(PointsDataset(points[:split], labels[:split]), PointsDataset(points[split:], labels[split:]),
                          None, {"num_classes": data.num_classes})

    def build_model(self, model: PointsModel, info: dict, *, assets: Path) -> vaekit.VAE:
        center_file = Path(assets) / "center.json"
        center = torch.tensor(json.loads(center_file.read_text())) if center_file.is_file() else torch.zeros(2)
        encoder_embedding = ConditionEmbedding(info["num_classes"], 4) if model.conditional else None
        decoder_embedding = ConditionEmbedding(info["num_classes"], 4) if model.conditional else None
        prior = None
        if model.conditional_prior:
            prior = LearnedConditionalPrior(model.latent_dim, ConditionEmbedding(info["num_classes"], 4), hidden=8)
        return vaekit.VAE(PointsEncoder(model, encoder_embedding, center),
                          PointsDecoder(model, decoder_embedding, center), model.latent_dim, prior=prior)


def register_points_plugin(monkeypatch: pytest.MonkeyPatch) -> PointsPlugin:
    """Register the plugin in this process for one test; monkeypatch restores the registry afterwards."""
    monkeypatch.setattr(vaekit.plugin, "_registered", dict(vaekit.plugin._registered))
    monkeypatch.setattr(vaekit.plugin, "_loaded", dict(vaekit.plugin._loaded))
    plugin = PointsPlugin()
    vaekit.register_plugin(plugin)
    return plugin
