"""Killed prunes, torn logs, corrupt checkpoints and malformed run files: resume falls back, errors are one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vaekit
from vaekit.cli import main
from vaekit.io import checkpoint as checkpoint_module
from vaekit.io.checkpoint import CheckpointError, checkpoints

FILES = {"model.safetensors", "config.json", "state.json", "training.safetensors", "assets"}


def train(recipe: Path, run: Path, *args: str) -> int:
    return main(["train", str(recipe), "--out", str(run), "trainer.eval_every=1000", *args])


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_kill_while_pruning_never_leaves_a_half_deleted_checkpoint(points_recipe, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_rmtree = shutil.rmtree

    def killed_halfway(path, *args, **kwargs):  # what SIGKILL in the middle of pruning a checkpoint leaves
        if not Path(path).is_dir() or "step-20" not in Path(path).name:
            return real_rmtree(path, *args, **kwargs)
        first = sorted(Path(path).iterdir())[0]
        first.unlink() if first.is_file() else real_rmtree(first)
        raise KeyboardInterrupt

    assert train(points_recipe, run, "trainer.max_steps=20", "trainer.checkpoint_every=10", "trainer.keep_last=1",
                 "trainer.checkpoint_minutes=0") == 0
    monkeypatch.setattr(checkpoint_module.shutil, "rmtree", killed_halfway)
    assert train(points_recipe, run, "--resume", "trainer.max_steps=30", "trainer.checkpoint_every=10",
                 "trainer.keep_last=1") == 130
    monkeypatch.undo()
    for folder in checkpoints(run):  # step-20 was being pruned: it is whole or gone, never a husk
        assert {p.name for p in folder.iterdir()} == FILES, folder
    assert [p.name for p in checkpoints(run)] == ["step-30"]
    assert list((run / "checkpoints").glob(".trash-step-20-*"))
    assert train(points_recipe, run, "--resume", "trainer.max_steps=40", "trainer.checkpoint_every=10",
                 "trainer.keep_last=1") == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-40"]  # leftovers went on resume


def test_resume_cuts_the_log_back_drops_a_torn_line_and_removes_orphans(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(points_recipe, run, "trainer.max_steps=30", "trainer.checkpoint_every=20") == 0
    shutil.rmtree(run / "checkpoints" / "step-30")  # as if killed after logging steps 25 and 30
    orphan = run / "checkpoints" / ".tmp-step-30-abc"
    orphan.mkdir()
    (orphan / "model.safetensors").write_bytes(b"half")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 31, "split": "tra')  # killed in the middle of a line
    capsys.readouterr()
    assert train(points_recipe, run, "--resume", "trainer.max_steps=40", "trainer.checkpoint_every=20") == 0
    err = capsys.readouterr().err
    assert f"vaekit: note: {run / 'metrics.jsonl'}:" in err and "dropped a torn last line" in err
    assert f"removed {orphan}" in err and not orphan.exists()
    keys = [(r["step"], r["split"]) for r in records(run)]
    assert len(keys) == len(set(keys)), "records after the checkpoint were logged twice"
    assert [r["step"] for r in records(run) if r["split"] == "train"] == [5, 10, 15, 20, 25, 30, 35, 40]


@pytest.mark.parametrize("damage", ["truncate weights", "truncate training", "state without 'state'",
                                    "state not JSON", "wrong shape"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(points_recipe, tmp_path, capsys, damage):
    run = tmp_path / "run"
    assert train(points_recipe, run, "trainer.max_steps=40", "trainer.checkpoint_every=20") == 0
    latest = run / "checkpoints" / "step-40"
    if damage == "truncate weights":
        data = (latest / "model.safetensors").read_bytes()
        (latest / "model.safetensors").write_bytes(data[:len(data) // 2])
    elif damage == "truncate training":
        data = (latest / "training.safetensors").read_bytes()
        (latest / "training.safetensors").write_bytes(data[:100])
    elif damage == "state without 'state'":
        (latest / "state.json").write_text('{"step": 40}')
    elif damage == "state not JSON":
        (latest / "state.json").write_text('{"step": 40, "sta')
    else:
        tensors = load_file(str(latest / "model.safetensors"))
        name = next(iter(tensors))
        tensors[name] = torch.zeros(3, 3)
        save_file(tensors, str(latest / "model.safetensors"))
    capsys.readouterr()
    assert train(points_recipe, run, "--resume", "trainer.max_steps=50", "trainer.checkpoint_every=20") == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "set step-40 aside" in line]
    assert len(notes) == 1 and str(latest) in notes[0] and "resumed from" in notes[0]
    assert notes[0].endswith(str(run / "checkpoints" / "step-20"))
    assert (run / "checkpoints" / "corrupt-step-40").is_dir()
    assert [p.name for p in checkpoints(run)] == ["step-20", "step-40", "step-50"]
    assert max(r["step"] for r in records(run)) == 50


def test_no_intact_checkpoint_is_one_line(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(points_recipe, run, "trainer.max_steps=20") == 0
    (run / "checkpoints" / "step-20" / "model.safetensors").write_bytes(b"\0" * 10)
    capsys.readouterr()
    assert train(points_recipe, run, "--resume", "trainer.max_steps=30") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no intact checkpoint" in err and "model.safetensors" in err


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda c: c.update(info={}), "cannot build a model from its 'model' and 'info' (KeyError: 'dim')"),
    (lambda c: c.update(model=[]), "model: expected a mapping, got []"),
    (lambda c: c.update(info=[1, 2]), "info: expected a mapping"),
    (lambda c: c.pop("plugin"), "missing key 'plugin'"),
    (lambda c: c["model"].update(latent_dim=0), "model.latent_dim: expected a positive integer, got 0"),
    (lambda c: c["info"].update(dim=3), "config.json builds [3"),  # wrong tensor shapes name both files
    (lambda c: c["model"].update(hidden="wide"), "model.hidden: expected int"),
])
def test_a_malformed_config_json_is_one_line_naming_the_file(points_recipe, tmp_path, capsys, edit, expected):
    run = tmp_path / "run"
    assert train(points_recipe, run, "trainer.max_steps=5") == 0
    config_file = checkpoints(run)[-1] / "config.json"
    config = json.loads(config_file.read_text())
    edit(config)
    config_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as caught:
        vaekit.load(run)
    assert str(config_file) in str(caught.value) and expected in str(caught.value)
    capsys.readouterr()
    for verb in (["sample", str(run), "-n", "3"], ["eval", str(run), "--iw-samples", "2"]):
        assert main(verb) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and str(config_file) in err


def test_resuming_a_finished_run_adds_nothing_to_its_log(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=10"]) == 0  # ends in a warm-up
    log = (run / "metrics.jsonl").read_text()
    assert [r["split"] for r in records(run)].count("val") == 1 and records(run)[-1]["split"] == "note"
    capsys.readouterr()
    for _ in range(2):
        assert main(["train", str(run / "recipe.yaml"), "--out", str(run), "--resume"]) == 0
    assert (run / "metrics.jsonl").read_text() == log
    assert "  elbo " in capsys.readouterr().out  # the summary is still printed, from the logged evaluation


def test_a_resume_from_a_checkpoint_between_log_steps_logs_what_an_uninterrupted_run_logs(points_recipe, tmp_path):
    """Checkpoints every 7 steps, records every 5: the partial sums of a record travel in the checkpoint."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(points_recipe, straight, "trainer.max_steps=30", "trainer.checkpoint_every=7") == 0
    shutil.copytree(straight, resumed)
    for later in checkpoints(resumed)[1:]:  # as if killed right after step-7 was written
        shutil.rmtree(later)
    assert train(points_recipe, resumed, "--resume", "trainer.max_steps=30", "trainer.checkpoint_every=7") == 0

    def train_records(run: Path) -> list[dict]:
        timings = ("steps_per_s", "train_seconds")  # wall and process clocks differ between runs
        return [{k: v for k, v in r.items() if k not in timings} for r in records(run) if r["split"] == "train"]

    a, b = train_records(straight), train_records(resumed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [5, 10, 15, 20, 25, 30]
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        assert all(x[k] == (pytest.approx(y[k], rel=1e-6, abs=1e-9) if isinstance(y[k], float) else y[k])
                   for k in x), (x, y)


def test_eval_and_sample_read_the_newest_complete_checkpoint_of_a_run_that_trains(points_recipe, tmp_path, capsys):
    """Every step writes a checkpoint and prunes the one before: a reader may list one that is gone when it reads."""
    import os
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    environment.pop("VAEKIT_DEBUG", None)
    trainer = subprocess.Popen([sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(run),
                                "trainer.epochs=1000", "trainer.checkpoint_every=1", "trainer.keep_last=1",
                                "trainer.eval_every=100000", "trainer.log_every=100"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not checkpoints(run) and trainer.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert trainer.poll() is None, trainer.communicate()[1][-2000:]
        capsys.readouterr()
        for i in range(12):
            verb = ["sample", str(run), "-n", "3", "-o", str(tmp_path / "samples")] if i % 2 else \
                ["eval", str(run), "--iw-samples", "1", "--max-examples", "8", "--output", str(tmp_path / "e.json")]
            assert main(verb) == 0, capsys.readouterr().err
        for _ in range(100):  # quicker reads, so more of them fall on a prune (about 1 in 15 did, before)
            vaekit.load(run)
        assert trainer.poll() is None  # it trained all along
    finally:
        trainer.kill()
        trainer.wait()
