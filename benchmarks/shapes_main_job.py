"""The README's main job timed as a user runs it: `vaekit train recipes/image/shapes.yaml`, then `vaekit eval`.

    python benchmarks/shapes_main_job.py                          # benchmarks/results/shapes.json
    python benchmarks/shapes_main_job.py --threads 1 --baseline-commit REV --reference-wall 142
    python benchmarks/shapes_main_job.py --threads 1 --baseline-commit REV --reference-wall 142 --seeds 0,1,2
    python benchmarks/shapes_main_job.py --alone 3 --threads 1 --baseline-commit REV --reference-wall 142 --seeds 0,1,2
    python benchmarks/shapes_main_job.py --smoke                  # a few steps: checks the script

Each recipe trains in its own process (`python -m vaekit train RECIPE --out WORK/NAME`): wall seconds, CPU seconds
(user + system of every thread) and the trainer's steps per second (metrics.jsonl), then `vaekit eval RUN
--iw-samples 0` gives MIG and SAP (the test images' generating factors), reconstruction MSE and the ELBO (nats).
Wall time on a machine other people load says little, so --baseline trains another recipe (--baseline-commit REV:
the shapes recipe at that git revision) at the same time, the same way, and the result keeps both CPU times and
their ratio; --reference-wall S (the baseline's wall seconds measured on an idle 2-core
machine) adds wall_seconds_2core_estimate = S x the CPU ratio. --threads N runs both with N torch threads.
--seeds A,B,C trains the recipe at each seed, all at the same time: the first seed gives the times and the plain
figures (mig, ...), every other seed N its eval figures as mig_seedN, ... --alone N first trains the recipe N
times by itself with torch's default threads: on an idle machine, wall_seconds_alone (their median, with the
fastest and slowest beside it) is the time a user waits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, add_common_flags, data_dir, log, overall_rate, trainer_windows, work_folder, write_result

RECIPE = "recipes/image/shapes.yaml"
SMOKE = ["trainer.max_steps=3", "data.num_train=256", "data.num_val=64", "data.num_test=64", "trainer.eval_every=3",
         "trainer.checkpoint_every=3", "latent.sampler_examples=64"]
EVAL_FIGURES = ("mig", "sap", "reconstruction_mse", "elbo")


def start(args: list[str], env: dict, stderr: Path) -> subprocess.Popen:
    """`python -m vaekit ARGS` started from the repository root, its stderr into the file stderr."""
    with stderr.open("w") as errors:
        return subprocess.Popen([sys.executable, "-m", "vaekit", *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=errors)


def finish(process: subprocess.Popen, started: float, stderr: Path) -> tuple[float, float]:
    """Wait for a process from start(): (wall seconds since started, its CPU seconds: user + system, all threads);
    a failure ends the script with the end of its stderr."""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(process.args[1:])} failed (rc {process.returncode}):\n{stderr.read_text()[-4000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def train_side_by_side(jobs: dict[str, tuple[Path, Path, list[str]]], overrides: list[str], env: dict
                       ) -> dict[str, dict]:
    """Train each (recipe, run folder, its own overrides), all at once (a busy machine then slows them alike): time
    figures."""
    started = time.perf_counter()
    running = {}
    for name, (recipe, run, own) in jobs.items():
        log(f"training {recipe} {' '.join(own)} -> {run}")
        running[name] = start(["train", str(recipe), *overrides, *own, "--out", str(run)], env, stderr_file(run))
    figures = {}
    for name, process in running.items():
        run = jobs[name][1]
        wall, cpu = finish(process, started, stderr_file(run))
        steps = max(json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines())
        figures[name] = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "steps": steps,
                         "train_steps_per_s": round(overall_rate(trainer_windows(run)), 2)}
    return figures


def stderr_file(run: Path) -> Path:
    """Where a training run's stderr goes: beside its run folder."""
    return run.with_name(f"{run.name}-train.log")


def scores(run: Path, env: dict) -> dict:
    """`vaekit eval RUN --iw-samples 0`: MIG, SAP, reconstruction MSE and the ELBO (nats)."""
    output, stderr = run / "eval-main-job.json", run.with_name(f"{run.name}-eval.log")
    finish(start(["eval", str(run), "--iw-samples", "0", "--output", str(output)], env, stderr), time.perf_counter(),
           stderr)
    figures = json.loads(output.read_text())
    return {name: round(figures[name], 4) for name in EVAL_FIGURES}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", type=Path, default=REPO / RECIPE)
    p.add_argument("--baseline", type=Path, default=None, help="another recipe trained at the same time, the same way")
    p.add_argument("--baseline-commit", default=None,
                   help=f"as --baseline: {RECIPE} as it was at this git revision")
    p.add_argument("--reference-wall", type=float, default=None,
                   help="the baseline's wall seconds on an idle 2-core machine: gives wall_seconds_2core_estimate")
    p.add_argument("--threads", type=int, default=None, help="torch threads of each run (default: torch's own)")
    p.add_argument("--alone", type=int, default=0, metavar="N",
                   help="first train the recipe N times alone with torch's default threads: wall_seconds_alone "
                        "(median), the wait a user has on this machine")
    p.add_argument("--seeds", default=None, help="seeds to train the recipe at, comma-separated (the first is timed)")
    args = add_common_flags(p).parse_args()
    data_dir()  # VAEKIT_DATA for the child processes (the shapes need no files; other recipes may)
    env = dict(os.environ)
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else []
    if args.seed is not None and seeds:
        p.error("give --seed or --seeds, not both")
    overrides = [f"seed={args.seed}"] if args.seed is not None else []
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
        overrides.append(f"trainer.threads={args.threads}")
    overrides += ["trainer.progress=false", *(SMOKE if args.smoke else [])]
    with work_folder(args) as work:
        if args.baseline_commit:
            args.baseline = work / f"shapes-{args.baseline_commit}.yaml"
            args.baseline.write_text(subprocess.run(["git", "show", f"{args.baseline_commit}:{RECIPE}"], cwd=REPO,
                                                    check=True, capture_output=True, text=True).stdout)
        jobs = {"main": (args.recipe, work / "main-job", [f"seed={seeds[0]}"] if seeds else [])}
        for seed in seeds[1:]:
            jobs[f"seed{seed}"] = (args.recipe, work / f"main-job-seed{seed}", [f"seed={seed}"])
        if args.baseline:
            jobs["baseline"] = (args.baseline, work / "baseline", jobs["main"][2])
        alone = {}
        if args.alone:  # before the side-by-side runs, so nothing of this script's own shares the machine
            load = os.getloadavg()[0]
            plain_env = {key: value for key, value in env.items() if key != "OMP_NUM_THREADS"}
            plain = [o for o in overrides if not o.startswith("trainer.threads=")] + jobs["main"][2]
            runs = [train_side_by_side({"alone": (args.recipe, work / f"alone{i}", plain)}, [], plain_env)["alone"]
                    for i in range(args.alone)]
            walls = sorted(run["wall_seconds"] for run in runs)
            alone = {"wall_seconds_alone": round(statistics.median(walls), 1), "wall_seconds_alone_min": walls[0],
                     "wall_seconds_alone_max": walls[-1],
                     "cpu_seconds_alone": round(statistics.median(run["cpu_seconds"] for run in runs), 1)}
        timed = train_side_by_side(jobs, overrides, env)
        figures = {**alone, **timed["main"], **scores(jobs["main"][1], env)}
        for seed in seeds[1:]:
            figures.update({f"{key}_seed{seed}": value for key, value in scores(jobs[f"seed{seed}"][1], env).items()})
        notes = f"{args.threads or 'torch default'} torch threads; wall_seconds: as the machine was loaded at the time"
        if args.alone:
            notes += (f"; wall_seconds_alone: the median of {args.alone} trainings of the recipe, one after another "
                      f"before the rest, each alone with torch's default threads on {os.cpu_count()} cores (load "
                      f"average {load:.2f} when the first started); _min and _max: the fastest and slowest")
        notes += ("; MIG and MSE are on the shapes vaekit_image.shapes draws at this commit (its heart: two round "
                  "lobes, a notch and a point), comparable only with results on the same drawing")
        if seeds:
            notes += f"; seeds {args.seeds}, trained at the same time: the first gives the times and mig, ...; " \
                     "seed N gives mig_seedN, ..."
        if args.baseline:
            baseline = {**timed["baseline"], **scores(jobs["baseline"][1], env)}
            figures.update({f"baseline_{key}": value for key, value in baseline.items()})
            figures["cpu_ratio"] = round(figures["cpu_seconds"] / baseline["cpu_seconds"], 3)
            notes += f"; baseline: {args.baseline.name}, trained at the same time the same way"
            if args.reference_wall:
                figures["wall_seconds_2core_estimate"] = round(args.reference_wall * figures["cpu_ratio"], 1)
                notes += (f"; wall_seconds_2core_estimate: the baseline's {args.reference_wall:g} s on an idle "
                          "2-core machine times cpu_ratio")
        log(json.dumps(figures))
        recipe = str(args.recipe.resolve().relative_to(REPO)) if args.recipe.resolve().is_relative_to(REPO) else None
        write_result(args, "shapes", f"{RECIPE} trained as the README's main job: time, MIG and reconstruction "
                     "error (vaekit eval)", figures, recipe=recipe, notes=notes,
                     headline=[*(["wall_seconds_alone"] if args.alone else []), "wall_seconds_2core_estimate",
                               "cpu_seconds", "mig", "reconstruction_mse"])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
