"""Interrupts, with real signals to a real `vaekit train`: checkpoint, one line, the exact --resume command."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.io.checkpoint import checkpoints

# 640 examples / 32 per batch = 20 steps an epoch; 60 epochs = 1200 steps, far more than the test waits for.
LONG = ["trainer.epochs=60", "trainer.checkpoint_every=100000", "trainer.eval_every=100000", "trainer.progress=true",
        "trainer.log_every=1", "trainer.lr_schedule=constant"]  # constant: the LR does not depend on the length


@pytest.fixture(autouse=True)
def hangup_not_ignored():
    """Children inherit an ignored SIGHUP (pytest run under nohup, say): give them the default a terminal gives."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


def env() -> dict:
    environment = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    environment.pop("VAEKIT_DEBUG", None)
    return environment


def start_training(recipe: Path, run: Path, *overrides: str) -> subprocess.Popen:
    """`vaekit train` in a subprocess, returned once it has logged a few steps."""
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "train", str(recipe), "--out", str(run), *LONG,
                                *overrides], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run / "metrics.jsonl", time.time() + 120
    while process.poll() is None and time.time() < deadline:
        if log.exists() and log.read_text().count("\n") >= 3:
            return process
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"training did not start: {process.communicate()[1][-2000:]}")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_checkpoints_the_step_and_prints_the_resume_command(points_recipe, tmp_path, signum):
    run = tmp_path / "run"
    process = start_training(points_recipe, run)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    last = err.rstrip("\n").split("\n")[-1]
    name = signal.Signals(signum).name
    assert last.startswith(f"vaekit: stopped by {name} after step "), err[-2000:]
    assert "Traceback" not in err and "\r" not in last  # on its own line, not after the progress bar's \r
    step = int(last.split("after step ")[1].split(";")[0])
    folder = run / "checkpoints" / f"step-{step}"
    assert f"; checkpoint {folder}; continue with: " in last
    assert [p.name for p in checkpoints(run)] == [f"step-{step}"]  # before checkpoint_every, nothing is lost
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == step

    # The printed command is exact: it continues the run to the same weights as one uninterrupted run.
    command = shlex.split(last.split("continue with: ")[1])
    assert command[:2] == ["vaekit", "train"] and command[-1] == "--resume"
    assert main(command[1:] + ["trainer.max_steps=" + str(step + 7), "trainer.progress=false"]) == 0
    straight = tmp_path / "straight"
    assert main(["train", str(points_recipe), "--out", str(straight), *LONG, f"trainer.max_steps={step + 7}",
                 "trainer.progress=false"]) == 0
    a, b = weights(checkpoints(straight)[-1]), weights(checkpoints(run)[-1])
    assert checkpoints(run)[-1].name == f"step-{step + 7}"
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_second_signal_aborts_at_once_and_the_run_still_resumes(points_recipe, tmp_path):
    run = tmp_path / "run"
    process = start_training(points_recipe, run, "trainer.checkpoint_every=10")
    deadline = time.time() + 60
    while not checkpoints(run) and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGTERM)  # a different signal, so the kernel cannot merge the two
    _, err = process.communicate(timeout=120)
    last = err.rstrip("\n").split("\n")[-1]
    assert "Traceback" not in err, err[-2000:]
    # Both signals pending at once: the second aborts. On a busy machine the second may come only once the
    # first has finished its step and checkpoint: then the run has stopped already and it changes nothing.
    aborted = process.returncode == 128 + signal.SIGTERM and last.startswith(
        "vaekit: aborted by a second SIGTERM; the last checkpoint, ")
    stopped = process.returncode == 128 + signal.SIGINT and last.startswith("vaekit: stopped by SIGINT after step ")
    assert aborted or stopped, err[-2000:]
    # Whatever the abort interrupted, every checkpoint left is whole and --resume continues the newest.
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", *LONG, "trainer.progress=false",
                 "trainer.max_steps=60", "trainer.checkpoint_every=10"]) == 0
    assert checkpoints(run)[-1].name == "step-60"
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_sigterm_while_the_trainer_sets_up_is_one_line(points_recipe, tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(run),
                                *LONG], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "recipe.yaml").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)  # today: killed without a word
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err[-3000:]
    assert err.rstrip("\n").split("\n")[-1].startswith("vaekit: stopped by SIGTERM "), err[-3000:]


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_ctrl_c_while_the_command_starts_prints_no_traceback(delay):
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "plugins"], env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(delay)  # python itself is up; vaekit is importing torch (or has just finished)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    # Interrupted, or done before the signal came; never "interrupted" and then carrying on, an ImportError of a
    # half-loaded numpy, or an abort (all three came from an exception raised inside numpy's or torch's import).
    assert (process.returncode, err) in ((130, "vaekit: interrupted\n"), (0, "")), (process.returncode, err)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_during_a_verb_other_than_train_is_one_line(points_recipe, tmp_path, name):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=5"]) == 0
    # A long evaluation (many importance samples): the signal lands while it runs, whatever the machine's speed.
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "eval", str(run), "--iw-samples", "200000"],
                               env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    process.send_signal(getattr(signal, name))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + getattr(signal, name), err[-2000:]
    assert "Traceback" not in err and err.rstrip("\n").split("\n")[-1] == f"vaekit: stopped by {name}"


def test_time_based_checkpoints_come_whatever_checkpoint_every_says(points_recipe, tmp_path):
    run = tmp_path / "run"
    # checkpoint_minutes=1e-9: every step is past the time, so each one is saved although checkpoint_every is huge.
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=6", "trainer.keep_last=100",
                 "trainer.checkpoint_every=100000", "trainer.checkpoint_minutes=1e-9"]) == 0
    assert [p.name for p in checkpoints(run)] == [f"step-{s}" for s in range(1, 7)]
    other = tmp_path / "other"
    assert main(["train", str(points_recipe), "--out", str(other), "trainer.max_steps=6",
                 "trainer.checkpoint_every=100000"]) == 0
    assert [p.name for p in checkpoints(other)] == ["step-6"]  # the default (10 minutes) did not fire


# A signal whose handler runs inside a finaliser (a __del__, the import lock's weakref callback): Python swallows
# the handler's exception and prints "Exception ignored ... Traceback". This script makes that happen for sure:
# after Trainer.METHOD, an object is dropped whose __del__ sends the process SIGTERM.
SIGNAL_IN_A_FINALISER = """
import signal, sys
from vaekit.training import trainer
from vaekit.cli import main

class SignalsWhenCollected:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)

original = getattr(trainer.Trainer, sys.argv[1])

def then_a_finaliser_signals(self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    SignalsWhenCollected()  # dropped at once: its __del__ runs here
    return result

setattr(trainer.Trainer, sys.argv[1], then_a_finaliser_signals)
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("method, line, trained", [
    ("__init__", "vaekit: stopped by SIGTERM while setting up the run; nothing was trained", False),
    ("_setup", "vaekit: stopped by SIGTERM outside the training steps; the last checkpoint, none", False),
    ("_evaluate", "vaekit: stopped by SIGTERM outside the training steps; the last checkpoint, ", True)])
def test_a_stop_signal_swallowed_by_a_finaliser_still_stops_the_run_in_one_line(points_recipe, tmp_path, method,
                                                                               line, trained):
    run = tmp_path / "run"
    process = subprocess.run([sys.executable, "-c", SIGNAL_IN_A_FINALISER, method, "train", str(points_recipe),
                              "--out", str(run), "trainer.max_steps=4"], env=env(), capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, process.stderr[-3000:]
    assert "Traceback" not in process.stderr and "Exception ignored" not in process.stderr, process.stderr[-3000:]
    assert process.stderr.rstrip("\n").split("\n")[-1].startswith(line), process.stderr[-3000:]
    # Set-up: it stops before the first step (not after it). The final evaluation: all 4 steps are kept.
    assert [p.name for p in checkpoints(run)] == (["step-4"] if trained else [])


def test_a_stop_signal_swallowed_by_a_finaliser_during_a_verb_is_still_one_line(monkeypatch, capsys):
    class SignalsWhenCollected:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)

    import vaekit._startup as startup
    import vaekit.cli.commands as cli

    monkeypatch.setattr(cli, "keep_freed_memory", lambda: SignalsWhenCollected() and None)
    previous = signal.signal(signal.SIGTERM, startup.raise_stopped)  # what `vaekit` itself installs for a verb
    try:
        assert main(["plugins"]) == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err == "vaekit: stopped by SIGTERM\n"


def test_sigterm_to_the_process_group_with_data_loader_workers_checkpoints_and_says_how_to_resume(points_recipe,
                                                                                                   tmp_path):
    """What a batch system or `kill -TERM -PGID` does: every process of the group, the loader's workers too, gets it."""
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(run), *LONG,
                                "trainer.num_workers=2", "trainer.progress=false"], env=env(), start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run / "metrics.jsonl", time.time() + 120
    while process.poll() is None and time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 3):
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()[1][-2000:]
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err[-3000:]
    assert "DataLoader worker" not in err, err[-3000:]
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("vaekit: stopped by SIGTERM after step "), err[-3000:]
    step = int(last.split("after step ")[1].split(";")[0])
    assert f"; checkpoint {run / 'checkpoints' / f'step-{step}'}; continue with: vaekit train " in last
    assert [p.name for p in checkpoints(run)] == [f"step-{step}"]
