"""Shapes: MIG and SAP of a VAE, a β-VAE and a β-TCVAE, three seeds each, the same budget (recipes/image/shapes.yaml).

    python benchmarks/shapes_disentanglement.py --device cuda                  # the full run
    python benchmarks/shapes_disentanglement.py --smoke      # one seed, a few steps: checks the script

Each run trains shapes.yaml (1500 steps of 64 images, 10-d latent) with its objective, then MIG and SAP
(vaekit.evaluation.disentanglement) on --test-examples test images, whose generating factors the data set knows.
Target: β-TCVAE above β-VAE above VAE in MIG. Prints one JSON line (mean, spread = sample std over seeds); the
result file is shapes_disentanglement.json. --seed N runs that one seed (as --seeds N).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from common import QUIET, add_common_flags, budget, device_name, load_recipe, train_and_load, work_folder, write_result

VARIANTS = {
    "vae": ["objective.kind=elbo", "objective.beta=1"],
    "beta_vae": ["objective.kind=elbo", "objective.beta=4"],
    "beta_tcvae": ["objective.kind=tcvae", "objective.beta=6"],
}


def main() -> None:
    from vaekit.evaluation.disentanglement import disentanglement
    from vaekit.runs import build_recipe_data

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time cap per run's training")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--test-examples", type=int, default=5000)
    args = add_common_flags(p).parse_args()
    if args.smoke:
        args.steps, args.seeds, args.test_examples = 3, "0", 200
    if args.seed is not None:
        args.seeds = str(args.seed)
    results = {"device": device_name(args.device), "steps": args.steps}
    with work_folder(args) as work:
        for name in args.variants.split(","):
            runs = []
            for seed in map(int, args.seeds.split(",")):
                torch.manual_seed(seed)
                overrides = [*VARIANTS[name], f"seed={seed}", *budget(args.steps, args.max_minutes),
                             f"data.num_test={args.test_examples}", *QUIET, f"trainer.checkpoint_every={args.steps}",
                             f"trainer.device={args.device}"]
                if args.smoke:
                    overrides += ["data.num_train=512", "data.num_val=64"]
                rec = load_recipe("recipes/image/shapes.yaml", overrides)
                model, plugin, minutes, steps = train_and_load(rec, work / f"{name}-{seed}", args.device)
                data = build_recipe_data(plugin, rec, Path(model.config["assets_dir"]))
                scores = disentanglement(model, data.test, data.collate, max_examples=args.test_examples)
                runs.append({"seed": seed, "mig": scores["mig"], "sap": scores["sap"], "steps_run": steps,
                             "train_minutes": round(minutes, 2), "mig_per_factor": scores["mig_per_factor"]})
                print(json.dumps({name: runs[-1]}), flush=True)
            summary = {}
            for metric in ("mig", "sap"):
                values = [r[metric] for r in runs]
                summary[metric] = round(statistics.mean(values), 4)
                summary[f"{metric}_spread"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
            results[name] = {**summary, "runs": runs}
        order = [name for name in ("vae", "beta_vae", "beta_tcvae") if name in results]
        migs = [results[name]["mig"] for name in order]
        results["target_met"] = len(migs) == 3 and migs[0] < migs[1] < migs[2]
        write_result(args, "shapes_disentanglement", "Shapes: MIG and SAP of a VAE, a β-VAE (β 4) and a β-TCVAE "
                     "(β 6), the same budget", results, headline=[f"{v}_mig" for v in reversed(order)],
                     notes=f"seeds {args.seeds}, {args.steps} steps each, {args.test_examples} test images; "
                           "spread: the sample standard deviation over seeds")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
