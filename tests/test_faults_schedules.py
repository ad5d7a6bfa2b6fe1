"""Schedules that fit the run: warm-ups as fractions of max_steps or of the max_minutes budget, and a note otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.io.checkpoint import checkpoints
from vaekit.training.trainer import warmup_length

REPO = Path(__file__).resolve().parents[1]


def records(run: Path, split: str = "train") -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == split]


def test_warmup_length_reads_fractions_of_the_run_and_steps_win():
    assert warmup_length(0, 0.2, 300, "trainer.warmup") == 60
    assert warmup_length(0, 0.001, 300, "trainer.warmup") == 1  # a fraction never rounds a warm-up away
    assert warmup_length(50, 0.2, 300, "trainer.warmup") == 50  # an explicit step count (an override) wins
    assert warmup_length(0, None, 300, "trainer.warmup") == 0
    with pytest.raises(RuntimeError, match="trainer.warmup_fraction: expected a fraction of the run"):
        warmup_length(0, 1.5, 300, "trainer.warmup")


def test_fractions_complete_the_schedule_whatever_max_steps_says(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    fractions = ["objective.kl_schedule.warmup_steps=0", "objective.kl_schedule.warmup_fraction=0.5",
                 "trainer.warmup_steps=0", "trainer.warmup_fraction=0.1", "trainer.log_every=1"]
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=40", *fractions]) == 0
    beta = {r["step"]: r["beta"] for r in records(run)}  # step k is trained with beta(k - 1)
    assert beta[11] == pytest.approx(0.5) and beta[21] == 1.0 and beta[40] == 1.0
    lr = {r["step"]: r["lr"] for r in records(run)}  # the LR peaks when its warm-up (4 steps) ends
    assert max(lr, key=lr.get) == 3
    assert "note" not in capsys.readouterr().out and not records(run, "note")


def test_a_run_that_ends_inside_its_warmup_says_so(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=10"]) == 0  # KL warm-up: 20 steps
    out = capsys.readouterr().out
    note = [line for line in out.splitlines() if line.strip().startswith("note")]
    assert len(note) == 1 and "the run ended inside the KL warm-up (beta 0.5 of 1)" in note[0]
    assert [r["step"] for r in records(run, "note")] == [10]
    assert "KL warm-up" in records(run, "note")[0]["note"]


def test_under_max_minutes_the_schedule_follows_the_time_budget(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    # 100,000 epochs (2 million steps) can never finish in 3 seconds, on any machine: the time budget is the run,
    # and the KL warm-up (half of it) completes although the run stops after a small part of its steps.
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.epochs=100000", "trainer.max_minutes=0.05",
                 "objective.kl_schedule.warmup_steps=0", "objective.kl_schedule.warmup_fraction=0.5",
                 "trainer.log_every=1", "trainer.eval_every=100000", "trainer.checkpoint_every=100000",
                 "trainer.progress=true"]) == 0
    betas = [r["beta"] for r in records(run)]
    assert 5 < len(betas) < 2_000_000 and betas == sorted(betas)
    assert betas[0] == 0.0 and betas[-1] == 1.0
    out, err = capsys.readouterr()
    assert "note" not in out
    # The progress bar counts to where the budget ends the run, not to the 2 million steps it never reaches.
    bar = err.replace("\r", "\n").strip().splitlines()[-1]
    assert f"| {len(betas)}/{len(betas)} [" in bar and "2000000" not in bar
    state = json.loads((checkpoints(run)[-1] / "state.json").read_text())
    assert state["step"] == len(betas)


def test_fraction_schedules_resume_exactly(points_recipe, tmp_path):
    fractions = ["objective.kl_schedule.warmup_steps=0", "objective.kl_schedule.warmup_fraction=0.5",
                 "trainer.warmup_steps=0", "trainer.warmup_fraction=0.2", "trainer.max_steps=40",
                 "trainer.checkpoint_every=20"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", str(points_recipe), "--out", str(straight), *fractions]) == 0
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-40")
    assert main(["train", str(points_recipe), "--out", str(resumed), "--resume", *fractions]) == 0
    a = load_file(str(straight / "checkpoints" / "step-40" / "model.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "step-40" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_recipes_give_their_warmups_as_fractions():
    for path in sorted((REPO / "recipes").glob("*/*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        kl = recipe.get("objective", {}).get("kl_schedule", {})
        assert not kl.get("warmup_steps") and not recipe.get("trainer", {}).get("warmup_steps"), path
        if kl.get("kind") in ("linear", "sigmoid"):
            assert 0 < kl["warmup_fraction"] < 1, path
