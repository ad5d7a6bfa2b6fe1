"""Hostile or shared run folders and full disks: no write through a planted link, one trainer per run, one line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vaekit
from vaekit.cli import main
from vaekit.io.checkpoint import checkpoints, remove_checkpoint, save_checkpoint
from vaekit.io.safe_writes import WriteError, atomic_write_text, open_append


def env() -> dict:
    environment = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    environment.pop("VAEKIT_DEBUG", None)
    return environment


@pytest.fixture
def run(points_recipe, tmp_path) -> Path:
    folder = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(folder), "trainer.max_steps=20"]) == 0
    return folder


def plant_link(path: Path, tmp_path: Path) -> Path:
    """Make path a symbolic link to a file outside the run; return that file."""
    victim = tmp_path / "outside.txt"
    victim.write_text("precious\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    path.symlink_to(victim)
    return victim


@pytest.mark.parametrize("verb", ["eval", "sample", "resume"])
def test_writes_never_follow_a_link_planted_in_the_run(points_recipe, run, tmp_path, capsys, verb):
    target = {"eval": run / "eval-test.json", "sample": run / "outputs" / "sample" / "samples.csv",
              "resume": run / "metrics.jsonl"}[verb]
    victim = plant_link(target, tmp_path)
    capsys.readouterr()
    command = {"eval": ["eval", str(run), "--iw-samples", "2"], "sample": ["sample", str(run), "-n", "3"],
               "resume": ["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=30"]}[verb]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{target}: is a symbolic link; vaekit does not write through links in a run folder" in err
    assert victim.read_text() == "precious\n" and target.is_symlink()


def test_a_folder_link_planted_in_the_run_is_refused_too(points_recipe, run, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "recipe.yaml").write_text("plugin: points\n")  # a decoy: the link must not pass for a run folder
    (run / "outputs").mkdir(exist_ok=True)
    (run / "outputs" / "sample").symlink_to(elsewhere, target_is_directory=True)
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'outputs' / 'sample'}: is a symbolic link inside a run folder" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["recipe.yaml"]  # nothing written through the link
    # An output folder of the user's own choosing, outside the run, may be reached through a link.
    mine = tmp_path / "mine"
    mine.mkdir()
    (tmp_path / "mine-link").symlink_to(mine, target_is_directory=True)
    assert main(["sample", str(run), "-n", "3", "-o", str(tmp_path / "mine-link")]) == 0
    assert (mine / "samples.csv").is_file()


def test_safe_io_refuses_links_and_replaces_whole_files(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(WriteError, match="is a symbolic link"):
        atomic_write_text(link, "x")
    with pytest.raises(WriteError, match="is a symbolic link"):
        with open_append(link) as f:
            f.write("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "not-yet")
    with pytest.raises(WriteError, match="is a symbolic link"):
        atomic_write_text(dangling, "x")
    assert victim.read_text() == "keep" and not (tmp_path / "not-yet").exists()
    atomic_write_text(tmp_path / "out" / "file.txt", "one")
    atomic_write_text(tmp_path / "out" / "file.txt", "two")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["file.txt"]  # no temporary file left behind
    assert (tmp_path / "out" / "file.txt").read_text() == "two"


def test_a_second_trainer_on_one_run_folder_is_refused_naming_the_first(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(run),
                              "trainer.epochs=500", "trainer.progress=false"], env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "metrics.jsonl").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, first.communicate()[1][-2000:]
        for extra in ([], ["--resume"]):
            assert main(["train", str(points_recipe), "--out", str(run), *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1
            assert f"{run} is in use by another vaekit train (pid {first.pid}, holding {run / '.lock'})" in err
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(records) == len({(r["step"], r["split"]) for r in records})  # nobody interleaved
    finally:
        first.kill()
        first.wait()
    # The lock goes with its process (even after a SIGKILL): the run can be continued at once.
    step = int(checkpoints(run)[-1].name[5:]) if checkpoints(run) else 0
    resume = ["--resume"] if step else []
    assert main(["train", str(points_recipe), "--out", str(run), *resume, "trainer.epochs=500",
                 f"trainer.max_steps={step + 1}"]) == 0


def limited_train(recipe: Path, run: Path, limit: int, *overrides: str) -> subprocess.CompletedProcess:
    """`vaekit train --resume` where no file may grow past `limit` bytes (RLIMIT_FSIZE: writes fail with EFBIG)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "vaekit", "train", str(recipe), "--out", str(run), "--resume",
                           *overrides], env=env(), capture_output=True, text=True, preexec_fn=cap, timeout=300)


def test_a_full_disk_while_checkpointing_is_one_line_naming_the_last_intact_checkpoint(points_recipe, run):
    state_size = (checkpoints(run)[-1] / "state.json").stat().st_size
    result = limited_train(points_recipe, run, state_size // 2, "trainer.max_steps=30")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert f"{run / 'checkpoints' / 'step-30'}: cannot write the checkpoint (file too large" in result.stderr
    assert f"the last intact checkpoint is {run / 'checkpoints' / 'step-20'}" in result.stderr
    assert [p.name for p in checkpoints(run)] == ["step-20"] and not list((run / "checkpoints").glob(".tmp-*"))
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=30"]) == 0


def test_a_full_disk_while_logging_is_one_line_naming_the_file(points_recipe, run):
    log = run / "metrics.jsonl"
    state_size = (checkpoints(run)[-1] / "state.json").stat().st_size
    limit = 2 * state_size  # room for a checkpoint, not for the log once it is this long
    with open(log, "a") as f:  # a record of a step the checkpoint holds, so resume keeps it
        f.write(json.dumps({"step": 1, "split": "pad", "pad": "x" * (limit - log.stat().st_size - 200)}) + "\n")
    result = limited_train(points_recipe, run, limit, "trainer.max_steps=30", "trainer.log_every=1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert result.stderr.startswith(f"vaekit: error: {log}: file too large")
    assert f"the last intact checkpoint is {run / 'checkpoints' / 'step-20'}" in result.stderr
    assert "Traceback" not in result.stderr


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    return err.rstrip("\n")


def test_a_planted_checkpoints_link_is_never_written_renamed_or_deleted_through(points_recipe, run, tmp_path,
                                                                                  capsys):
    elsewhere = tmp_path / "elsewhere"
    (run / "checkpoints").rename(elsewhere)
    (run / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    held = sorted(p.name for p in elsewhere.iterdir())
    capsys.readouterr()
    assert main(["train", str(run / "recipe.yaml"), "--out", str(run), "--resume", "trainer.epochs=12"]) == 2
    assert one_error_line(capsys) == (f"vaekit: error: {run / 'checkpoints'}: is a symbolic link; vaekit does not "
                                      f"write through links in a run folder (remove the link, or train into another "
                                      f"--out)")
    # A run folder that never checkpointed (its .lock, no checkpoint) is trained afresh: the link is refused too.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".lock").write_text("")
    (fresh / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    assert main(["train", str(points_recipe), "--out", str(fresh), "trainer.max_steps=20"]) == 2
    assert one_error_line(capsys).startswith(f"vaekit: error: {fresh / 'checkpoints'}: is a symbolic link; ")
    # A link planted while the run trains: the checkpoint writes and prunes refuse it as well.
    model, _ = vaekit.load(elsewhere / held[-1])
    with pytest.raises(WriteError, match="is a symbolic link inside a run folder"):
        save_checkpoint(model, {"step": 21}, run / "checkpoints" / "step-21")
    with pytest.raises(WriteError, match="is a symbolic link inside a run folder"):
        remove_checkpoint(run / "checkpoints" / held[-1])
    assert sorted(p.name for p in elsewhere.iterdir()) == held


def test_a_decoy_run_behind_a_link_does_not_let_writes_through(run, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sample").mkdir(parents=True)
    for name in ("recipe.yaml", ".lock"):  # it looks like a run folder of its own
        (elsewhere / "sample" / name).write_text("decoy\n")
    (run / "outputs").symlink_to(elsewhere, target_is_directory=True)
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 2
    assert one_error_line(capsys) == (f"vaekit: error: {run / 'outputs'}: is a symbolic link inside a run folder; "
                                      f"vaekit does not write through it (remove the link or choose another output)")
    assert sorted(p.name for p in (elsewhere / "sample").iterdir()) == [".lock", "recipe.yaml"]


@pytest.mark.parametrize("where", ["folder", "dot"])
def test_out_at_a_folder_that_is_not_a_run_is_refused_in_one_line(points_recipe, tmp_path, capsys, monkeypatch,
                                                                  where):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "recipe.yaml").write_text("my notes\n")
    (mine / "metrics.jsonl").write_text('{"mine": 1}\n')
    monkeypatch.chdir(mine if where == "dot" else tmp_path)
    out = "." if where == "dot" else str(mine)
    assert main(["train", str(points_recipe), "--out", out, "trainer.max_steps=5"]) == 2
    assert one_error_line(capsys) == (f"vaekit: error: --out {out}: not a vaekit run (no .lock) but a folder of other "
                                      f"files (metrics.jsonl, recipe.yaml), whose recipe.yaml and metrics.jsonl a run "
                                      f"would replace; give a new or empty folder")
    assert sorted(p.name for p in mine.iterdir()) == ["metrics.jsonl", "recipe.yaml"]
    assert (mine / "recipe.yaml").read_text() == "my notes\n"
    assert (mine / "metrics.jsonl").read_text() == '{"mine": 1}\n'
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(points_recipe), "--out", str(empty), "trainer.max_steps=5"]) == 0  # empty is fine


@pytest.mark.parametrize("name", [".lock", "metrics.jsonl"])
def test_a_hard_link_planted_in_the_run_is_never_written(points_recipe, run, tmp_path, capsys, name):
    victim = tmp_path / "outside.txt"
    victim.write_text("precious\n")
    (run / name).unlink()
    os.link(victim, run / name)
    capsys.readouterr()
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=30"]) == 2
    line = one_error_line(capsys)
    assert f"{run / name}: is a hard link (2 names); vaekit does not write through links in a run folder" in line
    assert victim.read_text() == "precious\n"


def test_a_run_folder_removed_while_training_is_one_line_that_advises_no_resume(points_recipe, tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(run),
                                "trainer.epochs=500", "trainer.log_every=1", "trainer.checkpoint_every=100000",
                                "trainer.eval_every=100000"], env=env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 3) \
            and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()[1][-2000:]
    run.rename(tmp_path / "gone")  # the run's path is gone at once, whatever the trainer writes meanwhile
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and err.count("\n") == 1, err[-3000:]
    assert err == (f"vaekit: error: {run} was removed while training, and its checkpoints with it: nothing is left "
                   f"to resume; train again\n")
    assert not run.exists()  # not made again by a later write


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_start_leaves_the_folder_as_it_found_it(points_recipe, tmp_path, capsys, existing):
    out = tmp_path / "runs" / "run"
    if existing:
        out.mkdir(parents=True)
        (out / ".lock").write_text("")  # a run folder that never got to train, as a kill during set-up leaves it
    assert main(["train", str(points_recipe), "--out", str(out), "trainer.patience=2"]) == 2
    assert one_error_line(capsys).startswith("vaekit: error: trainer.patience=2 stops the run past its best ")
    if existing:
        assert [p.name for p in out.iterdir()] == [".lock"]
    else:
        assert not (tmp_path / "runs").exists()
