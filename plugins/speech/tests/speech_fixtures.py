"""Small FSDD subsets and tiny models shared by the speech plugin's tests (fast on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from vaekit_speech import plugin
from vaekit_speech.data import collate, single_thread
from vaekit_speech.data_config import SpeechDataConfig
from vaekit_speech.models import SpeechModelConfig

import vaekit
from vaekit.runs import build_model

SMALL = {"n_fft": 256, "hop_length": 128, "n_mels": 32}  # 32 mel bins, 16 ms frames at 8 kHz


def fsdd_root(data_dir: Path) -> Path:
    root = data_dir / "fsdd" / "recordings"
    if not root.is_dir():
        pytest.fail(f"FSDD recordings not found at {root}")
    return root


def fsdd_config(data_dir: Path, **overrides) -> SpeechDataConfig:
    """FSDD restricted to a couple of speakers and low recording indices (test = 0-4)."""
    values = {"source": "fsdd", "root": str(fsdd_root(data_dir)), "speakers": ["jackson", "theo"], "max_index": 9,
              **SMALL, **overrides}
    return SpeechDataConfig(**values)


def build(data_cfg: SpeechDataConfig, tmp_path: Path, seed: int = 0, **model_overrides):
    """(bundle, model) with a tiny conv-over-time VAE (8 frames per latent step)."""
    assets = tmp_path / "assets"
    assets.mkdir(exist_ok=True)
    bundle = plugin.build_data(data_cfg, seed=seed, assets=assets)
    model_cfg = SpeechModelConfig(**{"latent_dim": 8, "channels": [16, 32, 32], "hidden": 32, **model_overrides})
    return bundle, build_model(plugin, model_cfg, bundle.info, assets)


def train(model, dataset, steps: int, batch_size: int = 16, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Plain ELBO training for `steps` steps; returns the loss of each step."""
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate,
                                         generator=generator, drop_last=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    with single_thread():
        run_steps(model, loader, optimizer, steps, losses)
    return losses


def run_steps(model, loader, optimizer, steps: int, losses: list[float]) -> None:
    while len(losses) < steps:
        for batch in loader:
            terms = model(batch["x"], batch.get("c"), objective=vaekit.ELBO())
            optimizer.zero_grad()
            terms.loss.backward()
            optimizer.step()
            losses.append(terms.loss.item())
            if len(losses) == steps:
                break
