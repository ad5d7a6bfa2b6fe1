"""Yelp sentiment from 200 labels (100 per class): M1+M2 on an unconditional text VAE's codes, against the text
plugin's sentiment CNN trained on the same 200 sentences; test error (%) on the 1,000 test sentences (yelp/test.*).

    python benchmarks/semi_supervised_yelp.py --m1-run runs/yelp_m1   # M2 on a trained unconditional text VAE
    python benchmarks/semi_supervised_yelp.py                         # M1 first, for --m1-minutes of CPU time
    python benchmarks/semi_supervised_yelp.py --smoke                 # tiny subsets, a few steps: checks the script

M1 is recipes/text/yelp_sentiment.yaml with its sentiment condition, adversary and references turned off (M1_OFF):
an LSTM VAE with one 64-d vector per sentence. Each seed is the recipe's seed: it draws 100 labelled sentences per
class from the training split (the other ~167k stay unlabelled) and starts both learners. (a) The anchor:
vaekit_text's LabelClassifier (Kim's CNN, 96.1% test accuracy trained on every label: yelp_sentiment.json's
classifier_test_accuracy) trained on those 200 sentences alone for 100 epochs. (b) M1+M2
(recipes/text/yelp_m1m2.yaml) for --m2-minutes of CPU time. Target: M1+M2's error halves the gap between the anchor
and the classifier on every label (means over the seeds). One thread; prints one JSON line.
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
from common import QUIET, REPO, add_common_flags, load_recipe, log, seed_override, work_folder, write_result
from semi_supervised import cpu_seconds_of
from semi_supervised_fsdd import m1m2_error, spread
from vaekit_text.scorers import label_classifier, predict_labels

import vaekit
from vaekit.config.recipe import ObjectiveConfig
from vaekit.config.semi_supervised import labelled_indices, labels_of
from vaekit.io.checkpoint import resolve_model_dir
from vaekit.runs import run_recipe
from vaekit.training.trainer import train

M1_RECIPE, M2_RECIPE = "recipes/text/yelp_sentiment.yaml", "recipes/text/yelp_m1m2.yaml"
M1_OFF = ["data.condition_on=null", "data.references=null", "latent.condition_adversary=0"]  # unconditional
ANCHOR_EPOCHS = 100  # 400 steps over the 200 sentences: the CNN fits them all long before the last epoch


def full_label_error() -> float:
    """The sentiment CNN trained on every training label: its test error (%), from yelp_sentiment.json."""
    metrics = json.loads((REPO / "benchmarks/results/yelp_sentiment.json").read_text())["metrics"]
    return round(100.0 * (1 - metrics["classifier_test_accuracy"]), 2)


def steps_of(run: Path) -> int:
    """The training step of a run's newest checkpoint (or of a checkpoint folder given itself)."""
    state = json.loads((resolve_model_dir(run) / "state.json").read_text())["state"]["__dict__"]
    return int(dict((key, value) for key, value in state if isinstance(key, str))["step"])


def epochs_override(run: Path) -> str:
    """' trainer.epochs=E' when the M1 run's own recipe trained other epochs than the M1 recipe, else ''."""
    epochs = run_recipe(run).trainer.epochs
    return f" trainer.epochs={epochs}" if epochs != load_recipe(M1_RECIPE, []).trainer.epochs else ""


def anchor_error(recipe, work: Path, smoke: bool) -> dict:
    """The sentiment CNN trained on the recipe's labelled sentences alone: its test error (%) and CPU minutes."""
    plugin = vaekit.get_plugin("text")
    sentences = dataclasses.replace(recipe, objective=ObjectiveConfig())  # the plugin's own items: text and labels
    data = vaekit.build_recipe_data(plugin, sentences, work / "anchor-assets")
    labels = labels_of(data.train)
    names = data.info["class_names"]
    chosen = labelled_indices(labels, recipe.semi_supervised.labelled, len(names), recipe.seed, names)
    pairs = [(names[int(labels[i])], data.train.sentences[i]) for i in chosen]
    epochs = 2 if smoke else ANCHOR_EPOCHS
    started = time.process_time()
    classifier = label_classifier(pairs, names, None, epochs=epochs, seed=recipe.seed)
    predicted = predict_labels(classifier, data.test.sentences)
    truth = labels_of(data.test)
    return {"test_error": round(100.0 * float((predicted != truth).float().mean()), 2), "test_examples": len(truth),
            "labelled": len(chosen), "epochs": epochs,
            "cpu_minutes": round((time.process_time() - started) / 60, 2)}


def run_seed(seed: int, overrides: list[str], work: Path, smoke: bool) -> dict:
    """One labelled draw: the anchor's and M1+M2's test errors (%), in a process of its own with one thread."""
    torch.set_num_threads(1)
    recipe = load_recipe(M2_RECIPE, [*overrides, f"seed={seed}"])
    return {"anchor": anchor_error(recipe, work / f"seed{seed}", smoke),
            "m1m2": m1m2_error(recipe, work / f"m1m2-seed{seed}")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="seeds of the labelled draw (each the recipe's seed)")
    p.add_argument("--m1-run", type=Path, help="an unconditional text VAE run or checkpoint (default: train one)")
    p.add_argument("--m1-minutes", type=float, default=12.0, help="CPU minutes of M1's training")
    p.add_argument("--m2-minutes", type=float, default=4.0, help="CPU minutes of each M2's training")
    p.add_argument("--m2-steps", type=int, default=3000)
    args = add_common_flags(p).parse_args()
    torch.set_num_threads(1)
    tiny = ["subset.train=400", "subset.val=40", "subset.test=60"] if args.smoke else []
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
            train(load_recipe(M1_RECIPE, [*M1_OFF, "trainer.clock=process", "trainer.threads=1", *QUIET, *steps,
                                          *tiny, *seed_override(args)]), m1_run)
        m1_seconds = cpu_seconds_of(m1_run)
        results["m1"] = {"run": str(m1_run), "steps": steps_of(m1_run),
                         "cpu_minutes": round(m1_seconds / 60, 2) if m1_seconds else None}
        budget = ["trainer.max_steps=3"] if args.smoke else [f"trainer.max_minutes={args.m2_minutes}",
                                                              f"trainer.max_steps={args.m2_steps}"]
        extra = ["semi_supervised.labelled=20"] if args.smoke else []  # 10 per class in the tiny subset
        overrides = [f"semi_supervised.codes_from={m1_run}", "trainer.threads=1", *QUIET, *tiny, *extra, *budget]
        # One process per draw, one thread each: the draws are independent, and CPU time is their figure.
        with ProcessPoolExecutor(len(seeds), mp_context=multiprocessing.get_context("spawn")) as pool:
            draws = pool.map(run_seed, seeds, [overrides] * len(seeds), [work] * len(seeds),
                             [args.smoke] * len(seeds))
            for seed, draw in zip(seeds, draws, strict=True):
                results[f"seed_{seed}"] = draw
                log(f"seed {seed}: anchor {draw['anchor']['test_error']:.2f}% test error, M1+M2 "
                    f"{draw['m1m2']['test_error']:.2f}%")
        anchors = [results[f"seed_{seed}"]["anchor"]["test_error"] for seed in seeds]
        m1m2s = [results[f"seed_{seed}"]["m1m2"]["test_error"] for seed in seeds]
        results["anchor_test_error"], results["m1m2_test_error"] = spread(anchors), spread(m1m2s)
        results["all_labels_test_error"] = full = full_label_error()
        gap = results["anchor_test_error"]["mean"] - full
        closed = (results["anchor_test_error"]["mean"] - results["m1m2_test_error"]["mean"]) / gap if gap > 0 else None
        results["gap_closed"] = round(closed, 3) if closed is not None else None
        results["target_met"] = bool(closed is not None and closed >= 0.5)
        m1_command = (f"vaekit train {M1_RECIPE} --out runs/yelp_m1 {' '.join(M1_OFF)} trainer.threads=1 "
                      f"trainer.max_steps={results['m1']['steps']}{epochs_override(m1_run)}")
        write_result(args, "semi_supervised_yelp", "Yelp: M1+M2 test error (%) from 200 labelled sentences (100 per "
                     "class) against the sentiment CNN trained on the same sentences and on every label, mean and "
                     "std over the labelled draws", results, recipe=M2_RECIPE, device="cpu",
                     headline=["m1m2_test_error_mean", "anchor_test_error_mean", "all_labels_test_error",
                               "gap_closed"],
                     notes=f"one thread; seeds {','.join(map(str, seeds))} (each draws the 200 labelled sentences); "
                           f"test: the 1,000 sentences of yelp/test.0 and test.1; M1 trained by: {m1_command}; M2 "
                           f"up to {args.m2_minutes} CPU minutes each (codes included); the anchor is vaekit_text's "
                           "LabelClassifier trained for 100 epochs of the 200 sentences; gap_closed is the share of "
                           "the anchor's excess error over all_labels_test_error (yelp_sentiment.json) that M1+M2 "
                           "removes; the machine was shared, so CPU time is the figure")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
