"""NaN and inf: the last good checkpoint is good, and the advice to lower trainer.lr then --resume works."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import torch
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.io.checkpoint import checkpoints


def largest_weight(folder: Path) -> float:
    """max |w| over a checkpoint's weights (inf or nan when any is non-finite)."""
    tensors = load_file(str(folder / "model.safetensors"))
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        return float("nan")
    return max(t.abs().max().item() for t in tensors.values())


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_an_overflowing_lr_never_checkpoints_non_finite_weights(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", str(points_recipe), "--out", str(run), "trainer.lr=1e39", "trainer.checkpoint_every=1",
                 "trainer.warmup_steps=0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "step 1: the weights became non-finite" in err and "No checkpoint precedes it" in err
    assert checkpoints(run) == []  # today: step-1 held inf
    # "train again with a lower trainer.lr; the same --out is fine" is true, and starts a clean log.
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=10"]) == 0
    assert [r["step"] for r in records(run) if r["split"] == "train"] == [5, 10]


def test_a_huge_finite_lr_is_caught_before_its_weights_are_resumed(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=10"]) == 0
    good = largest_weight(checkpoints(run)[-1])
    # lr=1e6: the first update makes the weights ~1e6, finite; today that checkpoint was the "good" one.
    code = main(["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=20",
                 "trainer.lr=1e6", "trainer.checkpoint_every=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("vaekit: error: step 12: ") and "stopped before the update" in err
    assert f"The last good checkpoint, {run / 'checkpoints' / 'step-10'}, is intact" in err
    assert [p.name for p in checkpoints(run)] == ["step-10"]
    assert (run / "checkpoints" / "diverged-step-11").is_dir()  # kept for inspection, never resumed from
    assert largest_weight(checkpoints(run)[-1]) == good

    # The advice is followable: its own command (lr / 10 each time; here lower at once) resumes the good
    # checkpoint, and the change is recorded in the run's history.
    command = shlex.split(err.strip().split("then resume: ")[1])
    assert command[:2] == ["vaekit", "train"] and command[-1] == "trainer.lr=100000"
    assert main([*command[1:], "trainer.lr=0.001"]) == 0
    assert checkpoints(run)[-1].name == "step-20" and largest_weight(checkpoints(run)[-1]) < 10
    history = [r for r in records(run) if r["split"] == "resume"]
    assert [r["changed"] for r in history] == [{"trainer.lr": [0.01, 1e6]}, {"trainer.lr": [1e6, 0.001]}]
    assert all(r["step"] == 10 for r in history)
    assert all(r["lr"] <= 0.001 for r in records(run) if r["split"] == "train" and r["step"] > 10)


def test_grad_clip_and_precision_may_change_on_resume_but_not_the_model(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=10"]) == 0
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=20",
                 "trainer.grad_clip=0.5", "trainer.precision=bf16"]) == 0
    assert [r["changed"] for r in records(run) if r["split"] == "resume"] == [
        {"trainer.grad_clip": [1.0, 0.5], "trainer.precision": ["fp32", "bf16"]}]
    capsys.readouterr()
    for change in ("objective.beta=2.0", "data.noise=0.1", "seed=9", "model.hidden=16"):
        assert main(["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=30", change]) == 2
        err = capsys.readouterr().err
        assert f"in {change.split('=')[0]} (" in err and err.count("\n") == 1
