"""What the benchmark scripts share: their flags and work folder, timers, the test NLL and the result files.

Every script takes (add_common_flags):

    --out DIR       result files (benchmarks/results_table.py's schema) go to DIR/NAME.json; default
                    benchmarks/results/ for a real run, WORK/results under --smoke (never the committed files)
    --work-dir DIR  runs, caches and the script's full figures (NAME.details.json); default a temporary folder
    --seed N        the recipe's seed (default: the recipe's own); where a script writes per seed (speech_fsdd,
                    speech_strings), its figures are NAME_seedN, joined with the other seeds' of the same command
    --smoke         the same code path on a tiny budget (a few steps, tiny subsets): seconds, proves it runs

The scripts import this module by name: Python puts a script's own folder, benchmarks/, first on sys.path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import results_table
import torch

from vaekit.io.safe_writes import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
# Trainer settings of a benchmark run: no progress bar, no sample grids, no evaluation in the middle of the run.
QUIET = ["trainer.progress=false", "trainer.samples=0", "trainer.eval_every=1000000"]
CURVE_POINTS = 40  # loss-curve points a result keeps (training_figures): enough to see a collapse and when


def log(message: str) -> None:
    """A progress line on stderr (stdout's last line is the script's JSON)."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- flags, work folder, data


def add_common_flags(parser: argparse.ArgumentParser, work_aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """--out, --work-dir (also under work_aliases), --seed and --smoke."""
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the result files NAME.json (default benchmarks/results/, or WORK/results "
                             "under --smoke)")
    parser.add_argument("--work-dir", *work_aliases, dest="work_dir", type=Path, default=None,
                        help="runs, caches and the full figures (NAME.details.json); default a temporary folder")
    parser.add_argument("--seed", type=int, default=None, help="the recipe's seed (default: the recipe's own)")
    parser.add_argument("--smoke", action="store_true",
                        help="the same code path on a tiny budget (a few steps, tiny subsets): checks the script")
    return parser


@contextlib.contextmanager
def work_folder(args: argparse.Namespace) -> Iterator[Path]:
    """args.work_dir, made if missing, or a temporary folder removed afterwards; args.work_dir is set to it."""
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        yield args.work_dir
        return
    with tempfile.TemporaryDirectory(prefix="vaekit-bench-") as tmp:
        args.work_dir = Path(tmp)
        try:
            yield args.work_dir
        finally:
            args.work_dir = None


def data_dir() -> Path:
    """VAEKIT_DATA, set to the checkout's sibling shared/data when unset (where the recipes look)."""
    os.environ.setdefault("VAEKIT_DATA", str(REPO.parent / "shared" / "data"))
    return Path(os.environ["VAEKIT_DATA"]).expanduser()


def seed_override(args: argparse.Namespace) -> list[str]:
    """["seed=N"] when --seed was given, else nothing (the recipe keeps its seed)."""
    return [] if args.seed is None else [f"seed={args.seed}"]


def budget(steps: int | None = None, minutes: float | None = None) -> list[str]:
    """Trainer overrides for a run bounded by steps and/or minutes of wall time (None: that bound is off)."""
    return [f"trainer.max_steps={steps}" if steps else "trainer.max_steps=null",
            f"trainer.max_minutes={minutes}" if minutes else "trainer.max_minutes=null"]


def device_name(device: str) -> str:
    """The accelerator's name (the card behind a figure), or 'cpu'."""
    return torch.cuda.get_device_name(torch.device(device)) if str(device).startswith("cuda") else "cpu"


# ---------------------------------------------------------------- training through the shipped trainer


def load_recipe(path: str | Path, overrides: list[str]):
    """The recipe at path (relative to the repository or absolute) with overrides, VAEKIT_DATA set."""
    from vaekit import load_recipe as load

    data_dir()
    return load(REPO / path, overrides)


def train_and_load(rec, run_dir: Path, device: str):
    """Train rec into run_dir with vaekit.training.trainer.train; (model, plugin, minutes of training, steps run)."""
    from vaekit.training.trainer import train

    started = time.perf_counter()
    train(rec, run_dir)
    minutes = (time.perf_counter() - started) / 60
    model, plugin, _, steps = load_trained(run_dir, device)
    return model, plugin, minutes, steps


def train_in_process(rec, run_dir: Path):
    """Train rec into run_dir with the vaekit Trainer in this process; the Trainer, whose model (the run's final
    weights) and data (its DataBundle) the script goes on to score, without building them again."""
    from vaekit.training.trainer import Trainer

    trainer = Trainer(rec, run_dir)
    try:
        trainer.fit()
    finally:
        trainer.folder.close()  # the run folder's lock
    return trainer


def training_figures(run_dir: Path, amounts: tuple[str, ...] = ()) -> dict:
    """What the trainer's train records (RUN/metrics.jsonl) say of a run: steps, train_seconds (by trainer.clock),
    last_train_loss, a loss curve of about CURVE_POINTS records (step, loss, rec and kl in nats, beta),
    grad_norm_max, every gradient-norm spike (grad_spikes), and each of the plugin's batch amounts named, summed."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r.get("split") == "train"]
    every = max(1, len(records) // CURVE_POINTS)
    return {"steps": records[-1]["step"], "train_seconds": records[-1]["train_seconds"],
            "last_train_loss": records[-1]["loss"],
            "curve": [{k: r[k] for k in ("step", "loss", "rec", "kl", "beta")} for r in records[::every]],
            "grad_norm_max": max(r.get("grad_norm_max", 0.0) for r in records),
            "grad_spikes": [spike for r in records for spike in r.get("grad_spikes", [])],
            **{name: sum(r.get(name, 0.0) for r in records) for name in amounts}}


def load_trained(run_dir: Path, device: str):
    """A run trained earlier: (model, plugin, None for its unknown training minutes, steps run)."""
    import vaekit

    steps = max(json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    model, plugin = vaekit.load(run_dir, device=device)
    return model, plugin, None, steps


# ---------------------------------------------------------------- timers


def endless(loader: Iterable) -> Iterator:
    """A loader's batches, epoch after epoch."""
    while True:
        yield from loader


def time_steps(step: Callable[[], torch.Tensor], *, steps: int | None = None, seconds: float | None = None,
               untimed: int = 0, window: int | None = None) -> list[tuple[int, float]]:
    """Time a hand-written training loop: (steps, seconds) of each window of `window` steps, or of one window.

    step() runs one training step and returns its loss. It runs `untimed` times first (allocator, kernels), then
    until `steps` timed steps or `seconds` of wall time have passed. The loss is read back (.item()) at each
    window's end, as the vaekit trainer reads it once per log window; on a GPU that also waits for the queued
    work. With `window`, a last window shorter than it is dropped, as the trainer logs only whole windows.
    """
    if not (steps or seconds):
        raise ValueError("time_steps: give steps or seconds")
    loss = None
    for _ in range(untimed):
        loss = step()
    if loss is not None:
        loss.item()
    windows, done, in_window = [], 0, 0
    started = window_started = time.perf_counter()
    while True:
        loss = step()
        done, in_window = done + 1, in_window + 1
        last = (steps is not None and done >= steps) or (seconds is not None
                                                          and time.perf_counter() - started > seconds)
        if (window and in_window == window) or (last and not window):
            loss.item()
            now = time.perf_counter()
            windows.append((in_window, now - window_started))
            window_started, in_window = now, 0
        if last:
            return windows


def trainer_windows(run_dir: Path) -> list[tuple[int, float]]:
    """(steps, seconds) of each training log window the vaekit trainer wrote to RUN/metrics.jsonl."""
    windows, previous = [], 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("split") == "train" and "steps_per_s" in record:
            steps = record["step"] - previous
            windows.append((steps, steps / record["steps_per_s"]))
            previous = record["step"]
    return windows


def overall_rate(windows: list[tuple[int, float]]) -> float:
    """Steps per second over all the windows together."""
    seconds = sum(s for _, s in windows)
    return sum(n for n, _ in windows) / seconds if seconds else float("nan")


def median_rate(windows: list[tuple[int, float]]) -> float:
    """The median of the windows' steps per second."""
    return statistics.median(n / s for n, s in windows)


# ---------------------------------------------------------------- test likelihood


@torch.no_grad()
def test_nll(model, dataset, k: int, examples: int, batch_size: int = 100, chunk: int | None = None,
             with_elbo: bool = True) -> dict:
    """Importance-sampled NLL (k samples) on the first `examples` items, nats per example; with_elbo adds the
    one-sample ELBO and its KL. Seed torch first where the dataset draws (MNIST's dynamic binarization)."""
    from torch.utils.data import DataLoader, Subset

    from vaekit import iw_nll
    from vaekit.core.batch import to_device
    from vaekit.objectives.elbo import elbo
    from vaekit.objectives.sampling import prior_for

    subset = Subset(dataset, range(min(examples, len(dataset))))
    nll = elbo_sum = kl_sum = 0.0
    n = 0
    for batch in DataLoader(subset, batch_size=batch_size, shuffle=False):
        x = to_device(batch, model.device)["x"]
        nll += iw_nll(model, x, k=k, chunk_size=chunk).sum().item()
        if with_elbo:
            q = model.posterior(x)
            z, log_qz = q.rsample_and_log_prob()
            terms = elbo(model.log_likelihood(x, z), q, prior_for(model, None, x.shape[0], q), z=z, log_qz=log_qz)
            elbo_sum += terms.elbo.sum().item()
            kl_sum += terms.kl.sum().item()
        n += x.shape[0]
    out = {"nll": nll / n, "n_examples": n, "k": k}
    if with_elbo:
        out.update(elbo=elbo_sum / n, kl=kl_sum / n)
    return out


# ---------------------------------------------------------------- result files


def numbers(figures: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) dict of figures, keys joined with '_': a result file's metrics.
    Lists, strings, None and non-finite values stay in the details file only."""
    out = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numbers(value, f"{name}_"))
        elif isinstance(value, (int, float)) and math.isfinite(value):
            out[name] = float(value)
    return out


def chosen_figures(figures: dict, chosen: dict[str, tuple[str, float, int]]) -> dict[str, float]:
    """A result file's metrics picked from the figures: NAME: (figure, factor, decimals) gives figures[figure] *
    factor rounded to decimals (100 for a share in %), for each figure that is a finite number."""
    return {name: round(figures[key] * factor, decimals) for name, (key, factor, decimals) in chosen.items()
            if isinstance(figures.get(key), (int, float)) and math.isfinite(figures[key])}


def command_line(drop: tuple[str, ...] = (), drop_switches: tuple[str, ...] = ()) -> str:
    """This process's command, run from the repository root (with OMP_NUM_THREADS when it is set), without the
    flags named in drop and their values, nor the flags without a value named in drop_switches."""
    script = Path(sys.argv[0]).resolve()
    script = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    threads = os.environ.get("OMP_NUM_THREADS")
    argv, kept = iter(sys.argv[1:]), []
    for arg in argv:
        if arg in drop:
            next(argv, None)  # the flag's value
        elif arg.split("=", 1)[0] not in drop and arg not in drop_switches:
            kept.append(arg)
    return (f"OMP_NUM_THREADS={threads} " if threads else "") + shlex.join(["python", str(script), *kept])


# A figure of one seed in a result file that holds several: NAME_seedN.
SEEDED = re.compile(r"_seed(\d+)$")
# Flags that change no figure (where files go; scoring a saved run again), and --seed, which a result file of
# several seeds lists after.
NOT_IN_SEEDS_COMMAND = ("--out", "--work-dir", "--work", "--seed")
SWITCHES_NOT_IN_SEEDS_COMMAND = ("--score-again",)


def with_seeds(path: Path, seed: int, title: str, metrics: dict[str, float], headline: list[str] | None,
               recipe_sha256: str | None) -> tuple[str, str, dict[str, float], list[str] | None]:
    """One seed's figures (named NAME_seedN) joined with the other seeds' in the result file at path when that file
    holds the same command (but for --seed) on the same recipe; (title, command, metrics, headline) to record.

    The command reads `... --seed 0   # and --seed 1`; the headline names the first seed's figures."""
    base = command_line(NOT_IN_SEEDS_COMMAND, SWITCHES_NOT_IN_SEEDS_COMMAND)
    others: dict[str, float] = {}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("command", "").partition(" --seed ")[0] == base and old.get("recipe_sha256") == recipe_sha256:
            others = {k: v for k, v in old["metrics"].items() if (m := SEEDED.search(k)) and int(m[1]) != seed}
    seeds = sorted({seed, *(int(SEEDED.search(k)[1]) for k in others)})
    joined = {**others, **{f"{k}_seed{seed}": v for k, v in metrics.items()}}
    ordered = {f"{k}_seed{s}": joined[f"{k}_seed{s}"] for k in metrics for s in seeds if f"{k}_seed{s}" in joined}
    command = f"{base} --seed {seeds[0]}" + "".join(f"   # and --seed {s}" for s in seeds[1:])
    title += f" (seed {seed})" if len(seeds) == 1 else f" (seeds {', '.join(map(str, seeds[:-1]))} and {seeds[-1]})"
    return title, command, ordered, headline and [f"{k}_seed{seeds[0]}" for k in headline]


def results_folder(args: argparse.Namespace) -> Path:
    """--out, else WORK/results under --smoke, else benchmarks/results/."""
    if args.out is not None:
        return args.out
    if args.smoke:
        return args.work_dir / "results"
    return results_table.RESULTS


def write_result(args: argparse.Namespace, name: str, title: str, figures: dict, *, recipe: str | None = None,
                 device: str | None = None, notes: str | None = None, headline: list[str] | None = None,
                 metrics: dict[str, float] | None = None, per_seed: bool = False) -> Path:
    """Record the figures as the result file NAME.json (results_table.record_result) in results_folder(args),
    the full figures as WORK/NAME.details.json; the result file's path.

    metrics: the result file's figures (default: every finite number of figures). per_seed: under --seed N they
    are named NAME_seedN and join the other seeds' of the same command in the file (with_seeds)."""
    metrics = numbers(figures) if metrics is None else metrics
    if headline:
        headline = [key for key in headline if key in metrics] or None
    if args.work_dir is not None:
        atomic_write_text(args.work_dir / f"{name}.details.json", json.dumps(figures, indent=2, default=str) + "\n")
    folder = results_folder(args)
    folder.mkdir(parents=True, exist_ok=True)
    command = command_line()
    if per_seed and args.seed is not None:
        sha = results_table.recipe_sha256((REPO / recipe).read_text()) if recipe else None
        title, command, metrics, headline = with_seeds(folder / f"{name}.json", args.seed, title, metrics, headline,
                                                       sha)
    committed, results_table.RESULTS = results_table.RESULTS, folder  # record_result writes into RESULTS
    try:
        path = results_table.record_result(name, title, command, metrics, recipe=recipe, device=device,
                                           notes=notes, headline=headline)
    finally:
        results_table.RESULTS = committed
    log(f"written: {path}")
    return path
