"""MNIST with 100, 600 and 1,000 labels: the test error of M1+M2 (Kingma et al. 2014) and the CPU minutes it took.

    python benchmarks/semi_supervised.py                                 # M1, then M2 for each label count
    python benchmarks/semi_supervised.py --m1-run runs/mnist_m1          # M2 on a trained M1 (a run or checkpoint)
    python benchmarks/semi_supervised.py --smoke                         # tiny subsets, a few steps: checks the script

M1 is recipes/image/mnist.yaml with a 50-d latent, trained for --m1-minutes of this process's CPU time
(trainer.clock process); M2 (recipes/image/mnist_m1m2.yaml) learns on M1's codes from `labelled` labels, a tenth
per digit, drawn with the seed, for --m2-minutes of CPU time, and its classifier q(y|x) is scored on the 10k test
digits. M1's CPU time is read from the checkpoint M2 used (train_seconds; trainer.clock process); each M2 runs in
a process of its own, and its CPU time is that process's around its training (the codes' encoding included).
Target: at most 3.3% test error with 100 labels within 60 CPU-minutes, M1 and M2 together. One thread per
process (trainer.threads 1); prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from common import QUIET, add_common_flags, load_recipe, log, seed_override, work_folder, write_result
from torch.utils.data import DataLoader

M1_RECIPE, M2_RECIPE = "recipes/image/mnist.yaml", "recipes/image/mnist_m1m2.yaml"
TARGET_ERROR, TARGET_MINUTES = 3.3, 60.0


def cpu_seconds_of(run: Path) -> float | None:
    """Training CPU seconds recorded in a run's newest checkpoint (or in a checkpoint folder given itself)."""
    from vaekit.io.checkpoint import resolve_model_dir

    state = json.loads((resolve_model_dir(run) / "state.json").read_text())["state"]["__dict__"]
    return dict((key, value) for key, value in state if isinstance(key, str)).get("train_seconds")


def test_error(run: Path, recipe) -> tuple[float, int]:
    """The classifier's error on the recipe's test digits (%), read through M1 as `vaekit classify` reads files,
    and the number of test digits."""
    import vaekit
    from vaekit.config.recipe import ObjectiveConfig

    model, plugin = vaekit.load(run)
    images = dataclasses.replace(recipe, objective=ObjectiveConfig())  # the plugin's own items: images, labels
    data = vaekit.build_recipe_data(plugin, images, Path(model.config["assets_dir"]))
    wrong = n = 0
    torch.manual_seed(0)  # MNIST's dynamic binarization draws each test image's pixels
    for batch in DataLoader(data.test, batch_size=500, collate_fn=data.collate):
        wrong += int((model.classify(batch["x"]).argmax(-1) != batch["label"]).sum())
        n += len(batch["label"])
    return 100.0 * wrong / n, n


def run_m2(labels: int, overrides: list[str], work: Path) -> dict:
    """Train M1+M2 with `labels` labels; its test error (%) and this process's CPU minutes."""
    from vaekit.training.trainer import train

    torch.set_num_threads(1)
    recipe = load_recipe(M2_RECIPE, [*overrides, f"semi_supervised.labelled={labels}"])
    run = work / f"m1m2-{labels}"
    started = time.process_time()
    train(recipe, run)
    m2_minutes = (time.process_time() - started) / 60
    error, n = test_error(run, recipe)
    steps = max(json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines())
    return {"test_error": round(error, 2), "test_examples": n, "m2_steps": steps,
            "m2_cpu_minutes": round(m2_minutes, 2)}


def main() -> None:
    from vaekit.training.trainer import train

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", default="100,600,1000", help="label counts, each a multiple of 10")
    p.add_argument("--m1-run", type=Path, help="a trained M1 run or checkpoint (default: train one)")
    p.add_argument("--m1-minutes", type=float, default=15.0, help="CPU minutes of M1's training")
    p.add_argument("--m2-minutes", type=float, default=10.0, help="CPU minutes of each M2's training")
    p.add_argument("--m2-steps", type=int, default=20000)
    args = add_common_flags(p).parse_args()
    torch.set_num_threads(1)
    tiny = ["subset.train=1000", "subset.val=100", "subset.test=200"] if args.smoke else []
    if args.smoke:
        args.labels = "100"
    results: dict = {"device": "cpu", "threads": 1}
    with work_folder(args) as work:
        m1_run = args.m1_run
        if m1_run is None:
            m1_run = work / "m1"
            steps = ["trainer.max_steps=3"] if args.smoke else [f"trainer.max_minutes={args.m1_minutes}"]
            train(load_recipe(M1_RECIPE, ["model.latent_dim=50", "trainer.clock=process", "trainer.threads=1", *QUIET,
                                          *steps, *tiny, *seed_override(args)]), m1_run)
        m1_seconds = cpu_seconds_of(m1_run)
        results["m1"] = {"run": str(m1_run), "cpu_minutes": round(m1_seconds / 60, 2) if m1_seconds else None}
        counts = [int(labels) for labels in args.labels.split(",")]
        budget = ["trainer.max_steps=3"] if args.smoke else [f"trainer.max_minutes={args.m2_minutes}",
                                                              f"trainer.max_steps={args.m2_steps}"]
        common = [f"semi_supervised.codes_from={m1_run}", "trainer.threads=1", *QUIET, *tiny, *seed_override(args),
                  *budget]
        # One process per label count, one thread each: the runs are independent, and CPU time is their figure.
        with ProcessPoolExecutor(len(counts), mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = pool.map(run_m2, counts, [common] * len(counts), [work] * len(counts))
            for labels, run in zip(counts, runs, strict=True):
                run["cpu_minutes"] = round(run["m2_cpu_minutes"] + (m1_seconds or 0) / 60, 2)
                results[f"labels_{labels}"] = run
                log(f"{labels} labels: {run['test_error']:.2f}% test error, {run['cpu_minutes']:.1f} CPU-minutes "
                    "(M1 and M2)")
        first = results.get("labels_100")
        if first is not None:
            results["target_met"] = first["test_error"] <= TARGET_ERROR and first["cpu_minutes"] <= TARGET_MINUTES
        write_result(args, "semi_supervised_mnist", "MNIST: M1+M2 test error (%) with 100, 600 and 1,000 labels, "
                     "and the CPU minutes of M1 and M2 together", results, recipe=M2_RECIPE, device="cpu",
                     headline=[key for key in ("labels_100_test_error", "labels_100_cpu_minutes",
                                               "labels_600_test_error", "labels_1000_test_error") if key],
                     notes=f"one thread; M1 {M1_RECIPE} with model.latent_dim=50 (CPU minutes: its checkpoint's "
                           f"train_seconds, trainer.clock process); M2 up to {args.m2_minutes} CPU minutes each; "
                           "the machine was shared, so CPU time, not wall time, is the figure")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
