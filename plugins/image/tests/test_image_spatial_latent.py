"""model.latent_shape: spatial gives an AutoencoderKL-shaped latent [C, S/f, S/f] that trains, samples and evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from image_test_helpers import grid_size, png_size

import vaekit
from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"
TINY = ["trainer.max_steps=8", "trainer.batch_size=16", "trainer.eval_every=8", "trainer.eval_batches=1",
        "trainer.checkpoint_every=8", "trainer.samples=4", "trainer.progress=false", "trainer.log_every=4",
        "data.num_train=128", "data.num_val=32", "data.num_test=32", "model.width=8", "eval.batch_size=16",
        "model.latent_shape=spatial", "model.latent_channels=2", "model.depth=2", "model.decoder_pose=false"]


def test_a_spatial_latent_trains_a_few_steps_samples_and_evaluates(tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "shapes.yaml"), *TINY, "--out", str(run)]) == 0
    model, _ = vaekit.load(run)
    assert model.latent_shape == (2, 8, 8)  # 32 px halved twice
    q = model.posterior(torch.rand(3, 1, 32, 32))
    assert q.mean.shape == (3, 2, 8, 8) and q.kl().shape == (3,)
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "s")]) == 0
    assert png_size(tmp_path / "s" / "samples.png") == grid_size(2, 2, 32)
    assert main(["traverse", str(run), "--dims", "0,127", "--steps", "3", "-o", str(tmp_path / "t")]) == 0
    assert png_size(tmp_path / "t" / "traversal.png") == grid_size(3, 2, 32)  # units: flattened coordinates
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--iw-samples", "3", "--max-examples", "16", "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["nll"] > 0 and results["kl"] > 0
    assert len(results["kl_per_dim"]) == 2 * 8 * 8  # every latent pixel of every channel is a unit
