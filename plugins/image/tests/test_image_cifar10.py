"""recipes/image/cifar10.yaml on a CIFAR-10 subset (real JPEGs from the shared data): it trains and its loss falls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"


def cifar_subset(data_dir, root, per_class: dict[str, int]):
    """root/{train,test}/<class>/ with the first N JPEGs of each class of the shared CIFAR-10 folders."""
    for split, n in per_class.items():
        for folder in sorted((data_dir / "cifar10" / split).iterdir()):
            target = root / split / folder.name
            target.mkdir(parents=True)
            for path in sorted(folder.glob("*.jpg"))[:n]:
                shutil.copy(path, target / path.name)
    return root


def test_cifar10_subset_trains_and_loss_falls(data_dir, tmp_path):
    root = cifar_subset(data_dir, tmp_path / "cifar10", {"train": 40, "test": 4})
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "cifar10.yaml"), f"data.root={root}", "data.val_fraction=0.05",
                 "trainer.max_steps=60", "trainer.batch_size=32", "trainer.log_every=10", "trainer.eval_every=1000",
                 "trainer.warmup_steps=10", "trainer.samples=0", "--out", str(run)]) == 0
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert (saved["data"]["size"], saved["data"]["channels"], saved["model"]["depth"]) == (32, 3, 2)  # depth: recipe
    losses = [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r.get("split") == "train"]
    assert len(losses) == 6
    bits = [loss / (3 * 32 * 32 * 0.6931) for loss in losses]
    assert bits[-1] < bits[0] - 0.5, bits  # nats per image -> bits/dim: well down from the first 10 steps
