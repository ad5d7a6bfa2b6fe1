r"""MNIST: VampPrior, IAF and both against recipes/image/mnist.yaml, at the same number of steps.

    VAEKIT_DATA=../shared/data python benchmarks/image_mnist_latents.py --device cuda          # the full run
    python benchmarks/image_mnist_latents.py --smoke          # every variant, a few steps: checks the script

Each variant trains mnist.yaml for the same number of optimiser steps (--steps, default its 9300: what
30 CPU-minutes gave) with its `latent` keys, capped at --max-minutes of wall time per variant, then the
importance-sampled NLL with --iw-samples on the first --test-examples dynamically binarized test images.
Target: the best variant <= 84.0 nats. Prints one JSON line; the result file is mnist_latents.json.

A k = 1000 evaluation of all 10k test images is long on a CPU (VampPrior + IAF: 2 x 37 CPU-minutes): train
once into --work-dir, then score halves in two processes with --reuse --test-offset 0 / 5000 --test-examples
5000 (the mean of the halves' NLL is the full set's): benchmarks/results/mnist_latents.json was measured so.

pythae 0.1.2 joins with --pythae-python (the interpreter of a venv holding it: python -m venv
--system-site-packages /tmp/pythae-venv; /tmp/pythae-venv/bin/pip install pythae==0.1.2): its VAMP and
VAE_IAF train the same encoder and decoder (the image plugin's, wrapped as pythae modules, BCE) for the
same number of steps (as epochs over the training images, binarized once: pythae takes a fixed tensor;
AdamW, constant learning rate: pythae's default trainer), and its own get_nll (importance sampling,
--iw-samples) scores the same test images, binarized once with seed 0 (--pythae-worker vamp / iaf).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from common import (
    QUIET,
    REPO,
    add_common_flags,
    budget,
    device_name,
    load_recipe,
    load_trained,
    seed_override,
    test_nll,
    train_and_load,
    work_folder,
    write_result,
)
from torch.utils.data import Subset

VARIANTS = {
    "baseline": [],
    "vamp": ["latent.prior=vamp"],
    "iaf": ["latent.posterior=iaf"],
    "vamp_iaf": ["latent.prior=vamp", "latent.posterior=iaf"],
}


def pythae_worker(args) -> None:
    """Inside the pythae venv: train pythae's VAMP or VAE_IAF on the image plugin's network; print JSON."""
    import math
    import sys
    import time

    sys.path[:0] = [str(REPO), str(REPO / "plugins" / "image")]  # vaekit and the plugin, not installed there
    from pythae.models import VAE_IAF, VAMP, VAE_IAF_Config, VAMPConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae_nets import Decoder, Encoder  # benchmarks/ is on sys.path when run as a script
    from vaekit_image import plugin

    from vaekit.runs import build_model

    rec = load_recipe("recipes/image/mnist.yaml", ["trainer.device=cpu", *seed_override(args)])
    with tempfile.TemporaryDirectory() as assets:
        data = plugin.build_data(rec.data, seed=rec.seed, assets=Path(assets))
        net = build_model(plugin, rec.model, data.info, Path(assets))
    torch.manual_seed(0)
    train_images = torch.bernoulli(data.train.images.float() / 255.0)
    test_images = torch.bernoulli(data.test.images[:args.test_examples].float() / 255.0)


    batch = rec.trainer.batch_size
    steps_per_epoch = math.ceil(len(train_images) / batch)  # pythae keeps the last, partial batch
    epochs = max(1, math.ceil(args.steps / steps_per_epoch))
    common = dict(input_dim=(1, 28, 28), latent_dim=rec.model.latent_dim, reconstruction_loss="bce")
    if args.pythae_worker == "vamp":
        warmup_epochs = max(1, round(rec.objective.kl_schedule.warmup_steps / steps_per_epoch))
        config = VAMPConfig(**common, number_components=args.components, linear_scheduling_steps=warmup_epochs)
        model = VAMP(config, encoder=Encoder(net.encoder), decoder=Decoder(net.decoder))
    else:
        config = VAE_IAF_Config(**common, n_made_blocks=args.flow_depth)
        model = VAE_IAF(config, encoder=Encoder(net.encoder), decoder=Decoder(net.decoder))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        trainer = BaseTrainerConfig(output_dir=out, num_epochs=epochs, per_device_train_batch_size=batch,
                                    per_device_eval_batch_size=batch, optimizer_cls="AdamW",
                                    learning_rate=rec.trainer.lr, steps_saving=None,
                                    no_cuda=not args.device.startswith("cuda"))
        TrainingPipeline(training_config=trainer, model=model)(train_data=train_images, eval_data=test_images[:256])
    minutes = (time.perf_counter() - started) / 60
    model = model.to(args.device).eval()
    with torch.no_grad():
        log_px = model.get_nll(test_images.to(args.device), n_samples=args.iw_samples,
                               batch_size=min(args.iw_samples, 500))
    print(json.dumps({"nll": -float(log_px), "epochs": epochs, "steps_run": epochs * steps_per_epoch,
                      "train_minutes": round(minutes, 2), "k": args.iw_samples,
                      "n_examples": len(test_images), "nll_by": "pythae get_nll"}))


def pythae_run(args, variant: str) -> dict:
    """Run pythae_worker for variant in the pythae interpreter; its JSON result."""
    import subprocess

    command = [args.pythae_python, __file__, "--pythae-worker", variant, "--device", args.device,
               "--steps", str(args.steps), "--components", str(args.components), "--flow-depth",
               str(args.flow_depth), "--iw-samples", str(args.iw_samples), "--test-examples", str(args.test_examples)]
    command += [] if args.seed is None else ["--seed", str(args.seed)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from vaekit.runs import build_recipe_data

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time cap per variant's training")
    p.add_argument("--steps", type=int, default=9300, help="optimiser steps per variant (mnist.yaml's 9300)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--components", type=int, default=500, help="VampPrior pseudo-inputs (Tomczak & Welling: 500)")
    p.add_argument("--flow-depth", type=int, default=2)
    p.add_argument("--iw-samples", type=int, default=1000)
    p.add_argument("--test-examples", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=50, help="test images per NLL batch")
    p.add_argument("--chunk", type=int, default=200, help="importance samples decoded at once per batch")
    p.add_argument("--test-offset", type=int, default=0,
                   help="score test images from here on (split a long k = 1000 evaluation over processes)")
    p.add_argument("--reuse", action="store_true",
                   help="with --work-dir: score a variant's run already trained there instead of retraining")
    p.add_argument("--pythae-python", help="python of a venv with pythae==0.1.2 (adds its VAMP and VAE_IAF)")
    p.add_argument("--pythae-worker", choices=["vamp", "iaf"], help=argparse.SUPPRESS)  # runs inside that venv
    args = add_common_flags(p).parse_args()
    if args.pythae_worker:
        return pythae_worker(args)
    if args.smoke:
        args.steps, args.iw_samples, args.test_examples, args.components, args.chunk = 3, 2, 20, 5, 2
    torch.manual_seed(0)
    results = {"device": device_name(args.device), "steps": args.steps, "iw_samples": args.iw_samples}
    with work_folder(args) as work:
        for name in args.variants.split(","):
            overrides = [*VARIANTS[name], f"latent.components={args.components}",
                         f"latent.flow_depth={args.flow_depth}", *budget(args.steps, args.max_minutes), *QUIET,
                         f"trainer.checkpoint_every={args.steps}", f"trainer.device={args.device}",
                         *seed_override(args)]
            if args.smoke:
                overrides += ["subset.train=256", "data.val_size=64"]
            rec = load_recipe("recipes/image/mnist.yaml", overrides)
            run = work / name
            if args.reuse and (run / "checkpoints").is_dir():
                model, plugin, minutes, steps = load_trained(run, args.device)
            else:
                model, plugin, minutes, steps = train_and_load(rec, run, args.device)
            data = build_recipe_data(plugin, rec, Path(model.config["assets_dir"]))
            test = Subset(data.test, range(min(args.test_offset, len(data.test)), len(data.test)))
            figures = test_nll(model, test, args.iw_samples, args.test_examples, args.batch_size, args.chunk)
            figures["test_offset"] = args.test_offset
            results[name] = {**figures, "train_minutes": minutes and round(minutes, 2), "steps_run": steps}
            print(json.dumps({name: results[name]}), flush=True)
        if args.pythae_python:
            for variant in ("vamp", "iaf"):
                results[f"pythae_{variant}"] = pythae_run(args, variant)
                print(json.dumps({f"pythae_{variant}": results[f"pythae_{variant}"]}), flush=True)
        best = min((v["nll"], k) for k, v in results.items() if isinstance(v, dict) and not k.startswith("pythae"))
        results["best"] = {"variant": best[1], "nll": best[0], "target_met": best[0] <= 84.0}
        write_result(args, "mnist_latents", "MNIST with a VampPrior and an IAF posterior against mnist.yaml: test "
                     "NLL at the same number of steps", results,
                     headline=[f"{v}_nll" for v in args.variants.split(",")][:3],
                     notes=f"{args.steps} steps per variant (wall-time cap {args.max_minutes} min), k = "
                           f"{args.iw_samples}, test images {args.test_offset} on, at most {args.test_examples}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
