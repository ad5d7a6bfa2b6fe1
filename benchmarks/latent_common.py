"""Shared steps of the latent-family benchmarks: train a recipe with overrides, reload it, measure it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def recipe(path: str, overrides: list[str], device: str, max_minutes: float | None):
    """The recipe at REPO/path with overrides, the device, a quiet trainer and an optional wall-time cap."""
    from vaekit import load_recipe

    os.environ.setdefault("VAEKIT_DATA", str(REPO.parent / "shared" / "data"))
    extra = [f"trainer.device={device}", "trainer.progress=false"]
    if max_minutes:
        extra.append(f"trainer.max_minutes={max_minutes}")
    return load_recipe(REPO / path, [*overrides, *extra])


def train_and_load(rec, run_dir: Path, device: str):
    """Train rec into run_dir and return (model, plugin, minutes of training, steps run)."""
    from vaekit.trainer import train

    started = time.perf_counter()
    train(rec, run_dir)
    minutes = (time.perf_counter() - started) / 60
    model, plugin, _, steps = load_trained(run_dir, device)
    return model, plugin, minutes, steps


def load_trained(run_dir: Path, device: str):
    """A run trained earlier: (model, plugin, None for its unknown training minutes, steps run)."""
    import vaekit

    steps = max(json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    model, plugin = vaekit.load(run_dir, device=device)
    return model, plugin, None, steps


@torch.no_grad()
def test_nll(model, dataset, k: int, examples: int, batch_size: int, chunk: int) -> dict:
    """Importance-sampled NLL (k samples) and one-sample ELBO on the first `examples` items, nats per example."""
    from torch.utils.data import DataLoader, Subset

    from vaekit import iw_nll
    from vaekit.batch import to_device
    from vaekit.objectives import elbo, prior_for

    subset = Subset(dataset, range(min(examples, len(dataset))))
    nll = elbo_sum = kl_sum = 0.0
    n = 0
    for batch in DataLoader(subset, batch_size=batch_size, shuffle=False):
        x = to_device(batch, model.device)["x"]
        nll += iw_nll(model, x, k=k, chunk_size=chunk).sum().item()
        q = model.posterior(x)
        z, log_qz = q.rsample_and_log_prob()
        terms = elbo(model.log_likelihood(x, z), q, prior_for(model, None, x.shape[0], q), z=z, log_qz=log_qz)
        elbo_sum += terms.elbo.sum().item()
        kl_sum += terms.kl.sum().item()
        n += x.shape[0]
    return {"nll": nll / n, "elbo": elbo_sum / n, "kl": kl_sum / n, "n_examples": n, "k": k}


def device_name(device: str) -> str:
    """The accelerator's name (the card behind a figure), or 'cpu'."""
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
