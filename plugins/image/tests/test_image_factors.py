"""The shapes data set knows its generating factors, so `vaekit eval` reports the engine's MIG and SAP for it."""

from __future__ import annotations

import json
from pathlib import Path

from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"


def test_eval_reports_mig_and_sap_for_the_shapes_data_set(tmp_path):
    run = tmp_path / "run"
    tiny = ["trainer.max_steps=6", "trainer.batch_size=16", "trainer.eval_every=6", "trainer.eval_batches=1",
            "trainer.checkpoint_every=6", "trainer.samples=0", "trainer.progress=false", "data.num_train=64",
            "data.num_val=16", "data.num_test=64", "model.width=8", "model.hidden=32"]
    assert main(["train", str(RECIPES / "shapes.yaml"), *tiny, "--out", str(run)]) == 0
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--iw-samples", "0", "--max-examples", "48", "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert 0.0 <= results["mig"] <= 1.0 and -1e-9 <= results["sap"] <= 1.0
    assert set(results["mig_per_factor"]) == {"shape", "scale", "rotation", "x", "y"}
