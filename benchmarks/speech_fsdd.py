"""FSDD: the log-mel VAE (fsdd.yaml) beside the digit+speaker CVAE (fsdd_cvae.yaml), same CPU budget each.

Each recipe trains with the vaekit trainer for its epochs or --budget-seconds of process CPU time
(trainer.max_minutes with trainer.clock=process), whichever ends first (schedules follow whichever is further
along), then both are scored on the FSDD test split (recordings 0-4 of every digit/speaker, 300):
ELBO / IW-NLL per frame, mel L1 (dB), log-spectral distance (dB, mel scale), and the evaluation's own
digit and speaker classifiers (trained on real training mels, shared by both models) on real audio
(the ceiling), reconstructions, digit-conditioned samples and speaker conversions.

    python benchmarks/speech_fsdd.py --budget-seconds 600 --threads 1
    python benchmarks/speech_fsdd.py --device cuda --max-minutes 2          # wall-time budget
    python benchmarks/speech_fsdd.py --smoke                                # a few steps: checks the script

Each recipe's figures go to the result file RECIPE.json (fsdd.json, fsdd_cvae.json); the printed table compares them.

Targets: reconstructions keep the digit for >= 95% of test utterances relative to the
classifier's accuracy on real audio; digit-conditioned samples >= 90%.

On one CPU core, fsdd.yaml for its 2,300 steps (seeds 0 and 1; benchmarks/results/fsdd.json), and fsdd_cvae.yaml
for 600 CPU-seconds (benchmarks/results/fsdd_cvae.json):

    python benchmarks/speech_fsdd.py --recipes fsdd --max-steps 2300 --budget-seconds 5000 --iw-samples 5 --seed 0
    python benchmarks/speech_fsdd.py --recipes fsdd_cvae --budget-seconds 600 --seed 0

Trained far past its 30 epochs, fsdd.yaml overfits the 2,460 training clips: keep the epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import torch
from common import (
    QUIET,
    REPO,
    add_common_flags,
    chosen_figures,
    seed_override,
    train_in_process,
    training_figures,
    work_folder,
    write_result,
)
from torch.utils.data import DataLoader
from vaekit_speech import plugin

import vaekit
from vaekit.evaluation.evaluate import evaluate
from vaekit.training.trainer import seed_everything

# The result file's figures: name: (the script's figure, factor, decimals); shares in %, NLL in nats per frame.
FIGURES = {"recon_digit_relative": ("digit_acc_recon_relative", 100, 1), "samples_digit": ("digit_acc_samples", 100, 1),
           "conversion_digit_kept": ("digit_acc_converted", 100, 1),
           "conversion_target_speaker": ("speaker_acc_converted", 100, 1), "nll_per_frame": ("nll_per_frame", 1, 2),
           "mel_l1_db": ("mel_l1_db", 1, 2), "lsd_db": ("lsd_db", 1, 2), "steps": ("steps", 1, 0),
           "train_seconds": ("train_seconds", 1, 0)}
HEADLINE = {"fsdd": ["recon_digit_relative", "nll_per_frame", "mel_l1_db"],
            "fsdd_cvae": ["conversion_digit_kept", "conversion_target_speaker", "samples_digit"]}


def run_recipe(name: str, args, overrides: list[str]) -> dict:
    wall = args.max_minutes is not None
    steps = [f"trainer.max_steps={args.max_steps}", f"trainer.min_steps={args.max_steps}"] if args.max_steps else []
    recipe = vaekit.load_recipe(REPO / "recipes" / "speech" / f"{name}.yaml", [
        *QUIET, *steps, f"trainer.max_minutes={args.max_minutes if wall else args.budget_seconds / 60}",
        f"trainer.clock={'wall' if wall else 'process'}", f"trainer.device={args.device}",
        f"trainer.threads={args.threads}", *overrides])
    print(f"[{name}] training for {recipe.trainer.max_minutes * 60:.0f} {recipe.trainer.clock}-s on {args.device}",
          flush=True)
    run = args.work_dir / name / "run"
    if args.score_again:  # the model this script trained and saved into --work-dir, scored again
        seed_everything(recipe.seed)
        bundle = vaekit.build_recipe_data(plugin, recipe, args.work_dir / name / "assets")
        model = vaekit.load(args.work_dir / name / "model", device=args.device)[0].eval()
        steps_per_epoch = len(bundle.train) // recipe.trainer.batch_size
    else:
        trainer = train_in_process(recipe, run)
        bundle, model, steps_per_epoch = trainer.data, trainer.model.eval(), trainer.steps_per_epoch
    timing = training_figures(run)
    epochs = timing["steps"] / steps_per_epoch
    timing.update(clock=recipe.trainer.clock, epochs=epochs, seconds_per_epoch=timing["train_seconds"] / epochs)
    print(f"[{name}] {len(bundle.train)} train / {len(bundle.test)} test utterances, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; {timing['steps']} steps, "
          f"{timing['seconds_per_epoch']:.1f} {timing['clock']}-s per epoch", flush=True)
    loader = DataLoader(bundle.test, batch_size=50, shuffle=False, collate_fn=bundle.collate)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        summary = evaluate(model, loader, iw_samples=args.iw_samples)
        metrics = plugin.eval_metrics(model, loader, summary, classifier_epochs=args.classifier_epochs,
                                      eval_samples=args.eval_samples, classifier_dir=args.work_dir / "classifiers",
                                      score_audio=args.score_audio)
    summary.pop("kl_per_dim", None)
    if not args.score_again:
        model.save_pretrained(args.work_dir / name / "model")
    return {"recipe": name, **timing, **summary, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-seconds", type=float, default=600.0, help="CPU seconds of training per recipe")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="train each recipe for this much wall time instead (use with --device cuda)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="train this many steps (not the recipe's epochs), unless the budget ends first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--recipes", nargs="+", default=["fsdd", "fsdd_cvae"])
    parser.add_argument("--iw-samples", type=int, default=20, help="importance samples per test utterance")
    parser.add_argument("--classifier-epochs", type=int, default=8)
    parser.add_argument("--eval-samples", type=int, default=300, help="conditional samples / conversions scored")
    parser.add_argument("--score-audio", action="store_true",
                        help="also classify reconstructions after a Griffin-Lim round trip (slower)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--score-again", action="store_true",
                        help="score the models a run of the same command saved into --work-dir again, without "
                             "training (the result file records that command)")
    parser.add_argument("--data", default=os.environ.get("VAEKIT_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("overrides", nargs="*", help="recipe overrides for both recipes, e.g. trainer.batch_size=64")
    args = add_common_flags(parser, work_aliases=("--work",)).parse_args()
    if args.score_again and args.work_dir is None:
        parser.error("--score-again: give the --work-dir the models were trained into")
    os.environ["VAEKIT_DATA"] = args.data
    torch.set_num_threads(args.threads)
    overrides = [*args.overrides, *seed_override(args)]
    if args.smoke:
        args.budget_seconds, args.max_steps, args.iw_samples = 30, 3, 2
        args.classifier_epochs, args.eval_samples = 1, 20
        overrides += ["subset.train=64", "subset.val=20", "subset.test=20"]
    with work_folder(args):
        results = {name: run_recipe(name, args, overrides) for name in args.recipes}
        clock = f"{args.max_minutes} wall-minutes" if args.max_minutes is not None else \
            f"{args.budget_seconds:.0f} CPU-seconds"
        for name, figures in results.items():
            write_result(args, name, f"recipes/speech/{name}.yaml for {clock} of training"
                         + (f" (at most {args.max_steps} steps)" if args.max_steps else "")
                         + f" on {args.device}: test likelihood, mel distances and what the classifiers hear",
                         {k: v for k, v in figures.items() if k != "recipe"}, recipe=f"recipes/speech/{name}.yaml",
                         metrics=chosen_figures(figures, FIGURES), per_seed=True,
                         headline=HEADLINE.get(name, ["recon_digit_relative", "nll_per_frame", "mel_l1_db"]),
                         notes=f"shares in %: recon_digit_relative of the digit classifier's accuracy on the real "
                               f"test audio, the others absolute; NLL at IW k = {args.iw_samples}, nats per frame; "
                               f"train_seconds by trainer.clock; {args.threads} thread(s)")
    keys = ["steps", "epochs", "seconds_per_epoch", "elbo", "nll",
            "kl", "active_units", "neg_elbo_per_frame", "nll_per_frame", "mel_l1_db", "lsd_db",
            "digit_acc_real", "digit_acc_recon", "digit_acc_recon_relative", "digit_acc_recon_audio",
            "digit_acc_samples", "digit_acc_samples_relative", "speaker_acc_real", "speaker_acc_recon",
            "speaker_acc_recon_audio", "speaker_acc_samples", "speaker_acc_converted", "digit_acc_converted"]
    names = list(results)
    print(f"\nbudget: {args.budget_seconds:.0f} CPU-s of training per recipe, {args.threads} thread(s); "
          f"test split: {results[names[0]]['n_examples']} utterances; IW k={args.iw_samples}")
    print(f"{'metric':<28}" + "".join(f"{n:>14}" for n in names))
    for key in keys:
        cells = [results[n].get(key) for n in names]
        if all(c is None for c in cells):
            continue
        print(f"{key:<28}" + "".join(f"{c:>14.4f}" if isinstance(c, float) else f"{str(c):>14}" for c in cells))
    for name in names:
        r = results[name]
        recon = r.get("digit_acc_recon_relative")
        samples = r.get("digit_acc_samples_relative")
        checks = [f"recon digit kept {recon:.1%} of ceiling (target >= 95%): {'met' if recon >= 0.95 else 'NOT met'}"]
        if samples is not None:
            checks.append(f"samples {r['digit_acc_samples']:.1%} (target >= 90%): "
                          f"{'met' if r['digit_acc_samples'] >= 0.90 else 'NOT met'}")
        print(f"[{name}] " + "; ".join(checks))
    payload = {"budget_cpu_seconds": args.budget_seconds, "max_minutes": args.max_minutes, "device": args.device,
               "threads": args.threads, "results": results}
    print(json.dumps(payload, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


if __name__ == "__main__":
    main()
