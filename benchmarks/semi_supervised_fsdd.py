"""FSDD spoken digits from 50 labels (5 per digit): M1+M2 on a speech VAE's codes pooled over time, against the
speech plugin's digit classifier trained on the same 50 clips; test error (%) on the 300 test clips, 3 seeds.

    python benchmarks/semi_supervised_fsdd.py --m1-run runs/fsdd    # M2 on a trained recipes/speech/fsdd.yaml run
    python benchmarks/semi_supervised_fsdd.py                       # M1 first, for --m1-minutes of CPU time
    python benchmarks/semi_supervised_fsdd.py --smoke               # tiny subsets, a few steps: checks the script

Each seed is the recipe's seed: it draws 5 labelled clips per digit from the training split (the other 2,410 stay
unlabelled) and starts both learners. (a) The anchor: vaekit_speech's MelClassifier, the digit classifier `vaekit
eval` trains, trained on those 50 clips alone for as many steps as eval trains it on the whole split. (b) M1+M2
(recipes/speech/fsdd_m1m2.yaml): M2 on M1's codes, each recording's means pooled into thirds of its time plus their
spread (vaekit.core.pooling), for --m2-minutes of CPU time. Target: at least 2x fewer test errors than the anchor
(means over the seeds). One thread; prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import torch
from common import QUIET, add_common_flags, load_recipe, log, seed_override, work_folder, write_result
from semi_supervised import cpu_seconds_of, test_error
from vaekit_speech.data import collate
from vaekit_speech.metrics import train_classifier

import vaekit
from vaekit.config.recipe import ObjectiveConfig
from vaekit.config.semi_supervised import labelled_indices, labels_of
from vaekit.training.trainer import train

M1_RECIPE, M2_RECIPE = "recipes/speech/fsdd.yaml", "recipes/speech/fsdd_m1m2.yaml"
EVAL_EPOCHS, EVAL_BATCH = 8, 64  # how vaekit_speech.metrics trains the digit classifier that eval uses
TARGET_RATIO = 2.0


class Clips(torch.utils.data.Dataset):
    """Some clips of a speech dataset, with the `targets` (digit, speaker) that train_classifier reads."""

    def __init__(self, dataset, rows: list[int]):
        self.dataset, self.rows = dataset, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.rows[i]]

    def targets(self, i: int) -> tuple[int, int]:
        item = self[i]
        return int(item["label"]), int(item["speaker"])


def anchor_error(recipe, work: Path, smoke: bool) -> dict:
    """The digit classifier trained on the recipe's labelled clips alone: its test error (%) and CPU minutes."""
    plugin = vaekit.get_plugin("speech")
    clips = dataclasses.replace(recipe, objective=ObjectiveConfig())  # the plugin's own items: mels and labels
    data = vaekit.build_recipe_data(plugin, clips, work / "anchor-assets")
    labels = labels_of(data.train)
    names = data.info["class_names"]
    chosen = labelled_indices(labels, recipe.semi_supervised.labelled, len(names), recipe.seed, names)
    eval_steps = EVAL_EPOCHS * math.ceil(len(data.train) / EVAL_BATCH)  # eval's classifier, on every training clip
    epochs = 2 if smoke else math.ceil(eval_steps / math.ceil(len(chosen) / EVAL_BATCH))
    started = time.process_time()
    classifier = train_classifier(Clips(data.train, chosen), "label", len(names), data.info["n_mels"], epochs,
                                  EVAL_BATCH, seed=recipe.seed)
    wrong = n = 0
    with torch.no_grad():
        for start in range(0, len(data.test), 100):
            batch = collate([data.test[i] for i in range(start, min(len(data.test), start + 100))])
            logits = classifier(batch["x"]["mel"], batch["x"]["mask"])
            wrong += int((logits.argmax(-1) != batch["label"]).sum())
            n += len(batch["label"])
    return {"test_error": round(100.0 * wrong / n, 2), "test_examples": n, "labelled": len(chosen),
            "epochs": epochs, "cpu_minutes": round((time.process_time() - started) / 60, 2)}


def m1m2_error(recipe, run: Path) -> dict:
    """Train M1+M2 from the recipe into run: its test error (%) and this process's CPU minutes (codes included)."""
    started = time.process_time()
    train(recipe, run)
    minutes = (time.process_time() - started) / 60
    error, n = test_error(run, recipe)
    steps = max(json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines())
    return {"test_error": round(error, 2), "test_examples": n, "m2_steps": steps, "m2_cpu_minutes": round(minutes, 2)}


def spread(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for one value)."""
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="seeds of the labelled draw (each the recipe's seed)")
    p.add_argument("--m1-run", type=Path, help="a trained speech VAE run or checkpoint (default: train one)")
    p.add_argument("--m1-minutes", type=float, default=20.0, help="CPU minutes of M1's training")
    p.add_argument("--m2-minutes", type=float, default=4.0, help="CPU minutes of each M2's training")
    p.add_argument("--m2-steps", type=int, default=3000)
    args = add_common_flags(p).parse_args()
    torch.set_num_threads(1)
    tiny = ["subset.train=300", "subset.val=40", "subset.test=40"] if args.smoke else []
    seeds = [0] if args.smoke else [int(seed) for seed in args.seeds.split(",")]
    if args.seed is not None:
        seeds = [args.seed]
    results: dict = {"device": "cpu", "threads": 1}
    with work_folder(args) as work:
        m1_run = args.m1_run
        if m1_run is None:
            m1_run = work / "m1"
            steps = ["trainer.max_steps=3", "trainer.min_steps=0"] if args.smoke \
                else [f"trainer.max_minutes={args.m1_minutes}"]
            train(load_recipe(M1_RECIPE, ["trainer.clock=process", "trainer.threads=1", *QUIET, *steps, *tiny,
                                          *seed_override(args)]), m1_run)
        m1_seconds = cpu_seconds_of(m1_run)
        results["m1"] = {"run": str(m1_run), "cpu_minutes": round(m1_seconds / 60, 2) if m1_seconds else None}
        budget = ["trainer.max_steps=3"] if args.smoke else [f"trainer.max_minutes={args.m2_minutes}",
                                                              f"trainer.max_steps={args.m2_steps}"]
        for seed in seeds:
            recipe = load_recipe(M2_RECIPE, [f"semi_supervised.codes_from={m1_run}", "trainer.threads=1", *QUIET,
                                             *tiny, *budget, f"seed={seed}"])
            anchor = anchor_error(recipe, work, args.smoke)
            m1m2 = m1m2_error(recipe, work / f"m1m2-seed{seed}")
            results[f"seed_{seed}"] = {"anchor": anchor, "m1m2": m1m2}
            log(f"seed {seed}: anchor {anchor['test_error']:.2f}% test error, M1+M2 {m1m2['test_error']:.2f}%")
        anchors = [results[f"seed_{seed}"]["anchor"]["test_error"] for seed in seeds]
        m1m2s = [results[f"seed_{seed}"]["m1m2"]["test_error"] for seed in seeds]
        results["anchor_test_error"], results["m1m2_test_error"] = spread(anchors), spread(m1m2s)
        mean_m1m2 = results["m1m2_test_error"]["mean"]
        results["error_ratio"] = round(results["anchor_test_error"]["mean"] / mean_m1m2, 2) if mean_m1m2 else None
        results["target_met"] = bool(results["error_ratio"] and results["error_ratio"] >= TARGET_RATIO)
        write_result(args, "semi_supervised_fsdd", "FSDD: M1+M2 test error (%) from 50 labelled clips (5 per digit) "
                     "against the digit classifier trained on the same clips, mean and std over the labelled draws",
                     results, recipe=M2_RECIPE, device="cpu",
                     headline=["m1m2_test_error_mean", "anchor_test_error_mean", "error_ratio"],
                     notes=f"one thread; seeds {','.join(map(str, seeds))} (each draws the 50 labelled clips); M1 "
                           f"{m1_run.name} ({M1_RECIPE}); M2 up to {args.m2_minutes} CPU minutes each (codes "
                           "included); the anchor is vaekit_speech's MelClassifier trained for as many steps as "
                           "eval trains it on every training clip; the machine was shared, so CPU time is the figure")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
