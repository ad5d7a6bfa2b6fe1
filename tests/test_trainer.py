"""The trainer for real: exact resume after a SIGKILL, NaN stops, DDP with two processes, run-folder files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import vaekit
from vaekit.cli import main
from vaekit.io.checkpoint import checkpoints


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoints(run)[-1] / "model.safetensors"))


def train_lines(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timings = ("steps_per_s", "train_seconds")  # wall and process clocks differ between runs
    return [{k: v for k, v in r.items() if k not in timings} for r in lines if r["split"] == "train"]


def cli_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("VAEKIT_DEBUG", None)
    return env


def test_training_writes_a_complete_run_folder(points_recipe, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.epochs=6"]) == 0
    assert [p.name for p in checkpoints(run)] == [f"step-{s}" for s in (20, 40, 60, 80, 100, 120)]
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert saved["plugin"] == "points" and saved["trainer"]["batch_size"] == 32
    train = train_lines(run)
    betas = {r["step"]: r["beta"] for r in train}
    assert betas[5] == pytest.approx(4 / 20) and betas[25] == 1.0  # the linear warm-up (20 steps) reaches the loss
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
           if json.loads(line)["split"] == "val"]
    assert val[-1]["elbo"] > val[0]["elbo"] + 0.05, "validation ELBO should rise during training"
    assert list(run.glob("events.out.tfevents.*")), "TensorBoard events are missing"
    assert (run / "samples" / "step-25" / "samples.csv").read_text().count("\n") == 8
    model, plugin = vaekit.load(run)
    assert plugin.name == "points" and model.sample(4).shape == (4, 2)


@pytest.mark.slow
def test_resume_after_a_kill_equals_an_uninterrupted_run(points_recipe, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # 320 examples / 32 per batch = 10 steps per epoch; 200 steps; the kill comes after step 100's checkpoint.
    overrides = ["data.n_train=320", "trainer.epochs=20", "trainer.checkpoint_every=50", "trainer.eval_every=75"]
    assert main(["train", str(points_recipe), "--out", str(straight), *overrides]) == 0

    command = [sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(killed), *overrides]
    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step-100").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (killed / "checkpoints" / "step-100").is_dir(), process.stderr.read().decode()
    for later in checkpoints(killed):  # whatever the process managed after step 100 is thrown away
        if int(later.name[5:]) > 100:
            shutil.rmtree(later)

    assert main(["train", str(points_recipe), "--out", str(killed), "--resume", *overrides]) == 0
    a, b = final_weights(straight), final_weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"
    assert train_lines(straight) == train_lines(killed)


def test_resume_with_a_different_recipe_is_an_error_naming_the_keys(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_steps=20"]) == 0
    weights = final_weights(run)
    changed = ["trainer.max_steps=20", "model.latent_dim=3", "trainer.lr=0.02", "seed=4"]
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", *changed]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{run / 'recipe.yaml'} in seed (3 -> 4), model.latent_dim (2 -> 3);" in err
    assert [p.name for p in checkpoints(run)] == ["step-20"] and final_weights(run).keys() == weights.keys()
    # Running longer, elsewhere or more quietly is still the same run.
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", "trainer.max_steps=40",
                 "trainer.log_every=7", "eval.iw_samples=5"]) == 0
    assert checkpoints(run)[-1].name == "step-40"


def test_resuming_a_complete_run_says_what_ends_it_in_one_line(points_recipe, tmp_path, capsys):
    """A resume past the recipe's epochs (max_steps 40, but 2 epochs of 10 steps) trains nothing and says why."""
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "data.n_train=320", "trainer.epochs=2"]) == 0
    capsys.readouterr()
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", "data.n_train=320", "trainer.epochs=2",
                 "trainer.max_steps=40"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "is complete" in line]
    assert notes == [f"vaekit: note: {run} is complete: it is at step 20 and trainer.epochs=2 of 10 steps end at "
                     "step 20, before trainer.max_steps=40; nothing to train (raise trainer.epochs or "
                     "trainer.max_steps to go on)"]
    assert checkpoints(run)[-1].name == "step-20"
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", "data.n_train=320", "trainer.epochs=4",
                 "trainer.max_steps=30"]) == 0  # the named fix trains on, to the new end
    assert checkpoints(run)[-1].name == "step-30" and "is complete" not in capsys.readouterr().err


def test_min_steps_gives_a_small_data_set_more_epochs_and_max_steps_still_caps(points_recipe, tmp_path, capsys):
    """64 examples make 2 steps per epoch: 2 epochs would be 4 steps; trainer.min_steps=30 trains 15 epochs."""
    run, small = tmp_path / "run", ["data.n_train=64", "trainer.epochs=2", "trainer.min_steps=30"]
    assert main(["train", str(points_recipe), "--out", str(run), *small]) == 0
    assert checkpoints(run)[-1].name == "step-30" and max(r["epoch"] for r in train_lines(run)) == 14
    notes = [line for line in capsys.readouterr().err.splitlines() if "min_steps" in line]
    assert notes == ["vaekit: note: 64 training examples make 2 steps per epoch; trainer.min_steps=30 trains 30 "
                     "steps (15.0 epochs), not trainer.epochs=2"]
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", *small]) == 0
    assert "is at step 30 and trainer.min_steps=30 outlasts trainer.epochs=2 of 2 steps;" in capsys.readouterr().err
    capped = tmp_path / "capped"
    assert main(["train", str(points_recipe), "--out", str(capped), *small, "trainer.max_steps=12"]) == 0
    assert checkpoints(capped)[-1].name == "step-12"
    assert "trainer.min_steps=30 trains 12 steps (6.0 epochs), not trainer.epochs=2 (trainer.max_steps=12 caps it)" \
        in capsys.readouterr().err
    assert main(["train", str(points_recipe), "--out", str(tmp_path / "bad"), "trainer.min_steps=-1"]) == 2
    assert "trainer.min_steps" in capsys.readouterr().err


def test_how_often_a_run_evaluates_and_writes_samples_does_not_change_what_it_trains(points_recipe, tmp_path):
    """Samples drawn at each evaluation once came from training's generator, so eval_every changed the weights."""
    for every in (5, 1000):
        assert main(["train", str(points_recipe), "--out", str(tmp_path / f"every-{every}"), "trainer.max_steps=30",
                     f"trainer.eval_every={every}", "trainer.samples=8"]) == 0
    assert len(list((tmp_path / "every-5" / "samples").iterdir())) == 6  # steps 5..25 and the end: samples drawn
    often, once = final_weights(tmp_path / "every-5"), final_weights(tmp_path / "every-1000")
    assert all(torch.equal(often[name], once[name]) for name in often)


# A high constant learning rate makes the validation ELBO go up and down, so the best is not the last step.
NOISY = ["trainer.keep_best=true", "trainer.eval_every=5", "trainer.lr_schedule=constant", "trainer.lr=0.05",
         "trainer.samples=0", "trainer.checkpoint_every=100"]


def best_folders(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("best-step-*"))


def test_keep_best_keeps_the_best_validation_weights_and_the_verbs_use_them(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), *NOISY, "trainer.max_steps=35"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max((r for r in records if r["split"] == "val"), key=lambda r: r["elbo"])
    assert [r["step"] for r in records if r["split"] == "val"] == [5, 10, 15, 20, 25, 30, 35]
    assert best["step"] < 35  # this seed's best comes before the end, so "best" and "last" are different weights
    folder = run / "checkpoints" / f"best-step-{best['step']}"
    assert best_folders(run) == [folder.name]  # each better one replaced the one before
    assert json.loads((folder / "best.json").read_text())["elbo"] == best["elbo"]
    assert vaekit.io.checkpoint.resolve_model_dir(run) == folder
    assert vaekit.io.checkpoint.checkpoint_step(folder) == best["step"]
    kept, last = load_file(str(folder / "model.safetensors")), final_weights(run)
    assert checkpoints(run)[-1].name == "step-35" and any(not torch.equal(kept[k], last[k]) for k in kept)
    model, _ = vaekit.load(run)
    assert all(torch.equal(value, kept[name]) for name, value in model.state_dict().items())
    assert (f"vaekit: note: trainer.keep_best: the best validation ELBO, {best['elbo']:.4g} nats, came at step "
            f"{best['step']} of 35; {folder} holds it") in capsys.readouterr().err
    # --resume keeps comparing with the best kept so far: stopped at step 20 and resumed, it keeps the same weights.
    halves = tmp_path / "halves"
    assert main(["train", str(points_recipe), "--out", str(halves), *NOISY, "trainer.max_steps=20"]) == 0
    assert main(["train", str(points_recipe), "--out", str(halves), "--resume", *NOISY, "trainer.max_steps=35"]) == 0
    assert best_folders(halves) == [folder.name]
    resumed = load_file(str(halves / "checkpoints" / folder.name / "model.safetensors"))
    assert all(torch.equal(resumed[k], kept[k]) for k in kept)
    # keep_best cannot change on --resume (the verbs would load different weights): an error naming the key.
    assert main(["train", str(points_recipe), "--out", str(halves), "--resume", *NOISY,
                 "trainer.keep_best=false"]) == 2
    assert "trainer.keep_best" in capsys.readouterr().err


def test_patience_stops_where_the_validation_elbo_stopped_improving_and_resume_knows(points_recipe, tmp_path, capsys):
    full, early = tmp_path / "full", tmp_path / "early"
    assert main(["train", str(points_recipe), "--out", str(full), *NOISY, "trainer.max_steps=35"]) == 0
    # The known answer, from the uninterrupted run's log: the first evaluation that is not a new best.
    best_step, best, stop = None, -float("inf"), None
    for record in (json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()):
        if record["split"] == "val":
            if record["elbo"] > best:
                best_step, best = record["step"], record["elbo"]
            elif record["step"] - best_step >= 1 * 5:
                stop = record["step"]
                break
    assert stop is not None and stop < 35, "this seed's validation ELBO must stall before the end"
    capsys.readouterr()
    assert main(["train", str(points_recipe), "--out", str(early), *NOISY, "trainer.max_steps=35",
                 "trainer.patience=1"]) == 0
    assert [p.name for p in checkpoints(early)] == [f"step-{stop}"]
    assert best_folders(early) == [f"best-step-{best_step}"]
    assert f"vaekit: note: trainer.patience=1: no better validation ELBO in 1 evaluation since step {best_step} " \
           f"({best:.4g} nats); stopped at step {stop} of 35" in capsys.readouterr().err
    # Evaluations never change training, so the weights it stopped on are the full run's at that step.
    assert main(["train", str(points_recipe), "--out", str(early), "--resume", *NOISY, "trainer.max_steps=35",
                 "trainer.patience=1"]) == 0
    assert [p.name for p in checkpoints(early)] == [f"step-{stop}"]
    assert f"{early} is complete: trainer.patience=1: no better" in capsys.readouterr().err
    # More patience goes on, to the same end and the same best weights as the run that never stopped.
    assert main(["train", str(points_recipe), "--out", str(early), "--resume", *NOISY, "trainer.max_steps=35",
                 "trainer.patience=100"]) == 0
    assert best_folders(early) == best_folders(full) and checkpoints(early)[-1].name == "step-35"
    resumed, straight = final_weights(early), final_weights(full)
    assert all(torch.equal(resumed[name], straight[name]) for name in straight)
    assert main(["train", str(points_recipe), "--out", str(tmp_path / "bare"), "trainer.patience=2"]) == 2
    assert "trainer.patience=2 stops the run past its best validation ELBO: it needs trainer.keep_best=true" \
        in capsys.readouterr().err


def test_a_damaged_best_record_is_a_one_line_error_on_resume(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), *NOISY, "trainer.max_steps=10"]) == 0
    record = next((run / "checkpoints").glob("best-step-*")) / "best.json"
    record.write_text('{"step": 10}')
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", *NOISY, "trainer.max_steps=20"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"vaekit: error: {record}: expected numbers under 'step' and 'elbo'")


def test_a_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(points_plugin, tmp_path, capsys):
    rows = [f"{i / 100:.2f},{(i % 7) / 7:.3f}" for i in range(199)]
    rows.insert(150, "nan,0.5")  # one corrupt row in the training part of the file
    data = tmp_path / "points.csv"
    data.write_text("x,y\n" + "\n".join(rows) + "\n")
    recipe = tmp_path / "nan.yaml"
    recipe.write_text(f"plugin: points\nseed: 1\ndata: {{source: csv, path: {data}}}\n"
                      "trainer: {epochs: 2, batch_size: 10, checkpoint_every: 1, keep_last: 100, eval_every: 1000,"
                      " progress: false, samples: 0}\n")
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("vaekit: error: step ") and "loss became nan" in message
    assert "stopped before the update" in message and "is intact" in message and "\n" not in message
    failed_step = int(message.split("step ")[1].split(":")[0])
    saved = [int(p.name[5:]) for p in checkpoints(run)]
    # The weights of the step before gave the NaN loss, so that checkpoint is set aside, not resumed from.
    assert saved and max(saved) == failed_step - 2
    assert (run / "checkpoints" / f"diverged-step-{failed_step - 1}" / "model.safetensors").is_file()
    assert f"The last good checkpoint, {checkpoints(run)[-1]}, is intact" in message
    weights = final_weights(run)
    assert all(torch.isfinite(t).all() for t in weights.values())
    model, _ = vaekit.load(run)  # the last good checkpoint still loads and samples
    assert torch.isfinite(model.sample(3)).all()


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(points_recipe, tmp_path):
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "vaekit", "train", str(points_recipe), "--out", str(run), "trainer.epochs=2"]
    result = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys)), "only rank 0 may write metrics"
    # 640 examples over 2 processes of 32 per batch: 10 steps per epoch.
    assert max(r["step"] for r in records) == 20
    assert [p.name for p in checkpoints(run)] == ["step-20"]
    assert result.stdout.count("run folder:") == 1
    # One process cannot continue a two-process run exactly (data shards, noise streams): a one-line error.
    resumed = subprocess.run([sys.executable, "-m", "vaekit", "train", str(points_recipe), "--out", str(run),
                              "--resume", "trainer.epochs=3"], env=cli_env(), capture_output=True, text=True)
    assert resumed.returncode == 2
    assert "written by 2 process(es), this run has 1; resume with torchrun --nproc-per-node 2" in resumed.stderr
    assert resumed.stderr.count("\n") == 1
    # Patience: rank 0 alone evaluates and decides; every process must stop at the same step (once, they did not).
    early = tmp_path / "early"
    result = subprocess.run(command[:-2] + [str(early), *NOISY, "trainer.max_steps=35", "trainer.patience=1"],
                            env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = int(result.stderr.split("stopped at step ")[1].split(" ")[0])
    assert [p.name for p in checkpoints(early)] == [f"step-{stopped}"] and len(best_folders(early)) == 1


def test_bf16_autocast_and_device_errors(points_recipe, tmp_path, capsys):
    run = tmp_path / "bf16"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.precision=bf16", "trainer.max_steps=30"]) == 0
    assert [p.name for p in checkpoints(run)] == ["step-20", "step-30"]
    assert all(torch.isfinite(t).all() for t in final_weights(run).values())
    if not torch.cuda.is_available():
        assert main(["train", str(points_recipe), "--out", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
        assert "trainer.device=cuda: CUDA is not available" in capsys.readouterr().err
    assert main(["train", str(points_recipe), "--out", str(run)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_max_minutes_stops_early_with_a_checkpoint(points_recipe, tmp_path):
    run = tmp_path / "timed"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.max_minutes=1e-6"]) == 0
    assert [p.name for p in checkpoints(run)] == ["step-1"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["split"] == "train"]  # the step the budget ended on has its record
    assert [r["step"] for r in trained] == [1] and trained[0]["train_seconds"] > 6e-5


def test_the_process_clock_counts_cpu_time_not_waiting():
    from types import SimpleNamespace

    from vaekit.training.training_clock import TrainingClock

    def budget(clock: str) -> TrainingClock:
        cfg = SimpleNamespace(clock=clock, max_minutes=0.1 / 60, checkpoint_minutes=0.0)  # a 0.1 s budget
        timer = TrainingClock(cfg)
        timer.start()
        return timer

    wall, cpu = budget("wall"), budget("process")
    time.sleep(0.3)  # waiting, no CPU
    assert wall.tick(None) == (True, False, 0)
    assert cpu.tick(None) == (False, False, 0) and cpu.elapsed < 0.1
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # working
        pass
    assert cpu.tick(None)[0] and cpu.elapsed >= 0.1


def test_trainer_clock_is_a_recipe_key_that_times_the_run(points_recipe, tmp_path, capsys):
    from vaekit.config.reading import RecipeError
    from vaekit.config.recipe import load_recipe

    assert load_recipe(points_recipe).trainer.clock == "wall"
    assert load_recipe(points_recipe, ["trainer.clock=process"]).trainer.clock == "process"
    with pytest.raises(RecipeError, match="trainer.clock"):
        load_recipe(points_recipe, ["trainer.clock=gpu"])
    run = tmp_path / "cpu-timed"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.clock=process",
                 "trainer.max_minutes=1e-6"]) == 0
    assert [p.name for p in checkpoints(run)] == ["step-1"]
    # the clock may change on resume, like the budget it measures
    assert main(["train", str(run / "recipe.yaml"), "--out", str(run), "--resume", "trainer.clock=wall",
                 "trainer.max_minutes=1e-6"]) == 0
    assert [p.name for p in checkpoints(run)][-1] == "step-2"


def test_length_buckets_are_a_seeded_permutation_with_far_less_padding():
    from vaekit.training.trainer import SkippingSampler

    lengths = torch.randint(2, 60, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    data = list(range(1000))

    def epoch(bucket_batches: int, epoch: int = 0, skip: int = 0) -> list[int]:
        sampler = SkippingSampler(data, num_replicas=1, rank=0, shuffle=True, seed=3, drop_last=True, batch_size=32,
                                  lengths=lengths, bucket_batches=bucket_batches)
        sampler.set_epoch(epoch)
        sampler.skip = skip
        return list(sampler)

    def padding(indices: list[int]) -> float:
        batches = [indices[i:i + 32] for i in range(0, len(indices) - 31, 32)]
        return sum(32 * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)

    plain, bucketed = epoch(0), epoch(10)
    assert sorted(bucketed) == sorted(plain) and bucketed != plain  # the same examples, regrouped
    assert padding(bucketed) < 0.25 * padding(plain)
    assert epoch(10) == bucketed and epoch(10, epoch=1) != bucketed  # seeded per epoch
    assert epoch(10, skip=96) == bucketed[96:]  # resume starts at the same place of the same order
    first_batches = {tuple(sorted(bucketed[i:i + 32])) for i in range(0, 992, 32)}
    assert first_batches == {tuple(sorted(b)) for b in (bucketed[i:i + 32] for i in range(0, 992, 32))}


def test_bucketed_text_training_runs_and_resumes_exactly(tmp_path, data_dir):
    """A PTB recipe with trainer.bucket_batches, resumed from its step-10 checkpoint, ends on the same weights."""
    pytest.importorskip("vaekit_text")
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "text" / "ptb_lstm_cyclical.yaml"
    small = [f"data.train={data_dir}/ptb/ptb.train.txt", "subset.train=400", "model.embed_dim=16",
             "model.hidden_dim=16", "model.latent_dim=4", "trainer.batch_size=8", "trainer.bucket_batches=5",
             "trainer.max_steps=20", "trainer.eval_every=10", "trainer.eval_batches=1", "trainer.checkpoint_every=10",
             "trainer.samples=0", "trainer.progress=false", "data.val=null", "data.test=null"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", str(recipe), "--out", str(straight), *small]) == 0
    shutil.copytree(straight, resumed)
    shutil.rmtree(checkpoints(resumed)[-1])  # as if killed between step 10's checkpoint and step 20's
    assert [p.name for p in checkpoints(resumed)] == ["step-10"]
    assert main(["train", str(recipe), "--out", str(resumed), "--resume", *small]) == 0
    for key, value in final_weights(straight).items():
        torch.testing.assert_close(final_weights(resumed)[key], value, rtol=0, atol=0)


def test_bucketing_without_lengths_is_a_one_line_error(points_recipe, tmp_path, capsys):
    assert main(["train", str(points_recipe), "--out", str(tmp_path / "run"), "trainer.bucket_batches=5"]) != 0
    err = capsys.readouterr().err
    assert "trainer.bucket_batches" in err and "Traceback" not in err


def test_an_empty_evaluation_split_is_one_line_before_the_first_step(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "data.n_val=0"]) == 2
    err = capsys.readouterr().err
    assert err == ("vaekit: error: the val split of the points data is empty (0 examples, beside 640 training "
                   "examples), and the run evaluates it every trainer.eval_every steps and at the end: raise "
                   "data.n_val (now 0), or give more data\n")
    assert not run.exists()  # nothing trained, nothing left


def test_a_model_the_plugin_cannot_build_is_one_line_naming_the_key(points_recipe, tmp_path, capsys):
    assert main(["train", str(points_recipe), "--out", str(tmp_path / "run"), f"model.latent_dim={2**62}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vaekit: error: the points plugin cannot build the model (")
    assert err.endswith(f"; check model.latent_dim={2**62}\n")
