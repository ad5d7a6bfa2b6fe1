r"""MNIST image benchmark: vaekit trainer vs a plain PyTorch loop, and test NLL after a fixed CPU budget.

    VAEKIT_DATA=../shared/data python benchmarks/image_mnist.py                       # 30 minutes, k = 5000
    VAEKIT_DATA=../shared/data python benchmarks/image_mnist.py --steps 150 --budget-minutes 5 \
        --iw-samples 500 --test-examples 500                                           # a reduced run
    python benchmarks/image_mnist.py --smoke                                           # seconds: checks it

(a) Throughput, images/s: the vaekit Trainer on recipes/image/mnist.yaml against a hand-written
    loop on the same network (built by the image plugin), the same sampler (so the same batches),
    optimiser and objective. Rounds alternate trainer / plain so that load on a shared machine
    hits both; each side's figure is its median steady-state rate (first log window dropped).
(b) Test NLL: mnist.yaml trained by the vaekit Trainer for --budget-minutes (converted to steps
    with the rate from (a); the cosine schedule ends at the budget), then the importance-sampled
    NLL with --iw-samples on the first --test-examples dynamically binarized test images, in
    nats and bits/dim (defaults: 30 minutes, k = 5000, all 10000 test images).

pythae 0.1.2 joins (a) with --pythae-python: the interpreter of a separate venv holding pythae
(python -m venv /tmp/pythae-venv; pip install pythae==0.1.2). Its TrainingPipeline trains the
same encoder and decoder (wrapped as pythae BaseEncoder/BaseDecoder, BCE reconstruction loss) on
the same images, binarized once (pythae takes a fixed tensor); its rate is the second epoch's
train_step time. (a) writes the result file mnist_throughput.json, (b) mnist_budget_nll.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import (
    REPO,
    add_common_flags,
    endless,
    load_recipe,
    median_rate,
    seed_override,
    test_nll,
    time_steps,
    trainer_windows,
    work_folder,
    write_result,
)

import vaekit

RECIPE = "recipes/image/mnist.yaml"
SMOKE: list[str] = []  # --smoke: overrides of every recipe this script loads (a small training subset)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="training steps per side per round for (a) (default 300)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds for (a) (default 2)")
    p.add_argument("--log-every", type=int, default=25, help="steps per timing window (default 25)")
    p.add_argument("--budget-minutes", type=float, default=30.0, help="training time for (b) (default 30)")
    p.add_argument("--iw-samples", type=int, default=5000, help="k for the test NLL (default 5000)")
    p.add_argument("--test-examples", type=int, default=10000, help="test images for the NLL (default all 10000)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--skip-nll", action="store_true", help="run (a) only")
    p.add_argument("--images-per-s", type=float, help="skip (a): convert the budget to steps at this trainer rate")
    p.add_argument("--pythae-python", help="python of a venv with pythae==0.1.2 installed (adds pythae to (a))")
    p.add_argument("--pythae-worker", action="store_true", help=argparse.SUPPRESS)  # runs inside that venv
    return add_common_flags(p).parse_args()


def load(overrides: list[str]):
    return load_recipe(RECIPE, [*overrides, *SMOKE])


def trainer_rate(steps: int, log_every: int, run_dir: Path) -> float:
    """Median images/s of the vaekit Trainer over its logged windows (the first one dropped)."""
    from vaekit.training.trainer import train

    recipe = load([f"trainer.max_steps={steps}", f"trainer.log_every={log_every}", "trainer.eval_every=1000000",
                   "trainer.checkpoint_every=1000000", "trainer.samples=0", "trainer.progress=false",
                   "data.val_size=100"])
    train(recipe, run_dir)
    return median_rate(trainer_windows(run_dir)[1:]) * recipe.trainer.batch_size


def plain_rate(steps: int, log_every: int) -> float:
    """Median images/s of a plain loop: same network, sampler, AdamW, ELBO; no vaekit trainer."""
    from torch.utils.data import DataLoader

    from vaekit.plugin import get_plugin
    from vaekit.runs import build_model
    from vaekit.training.trainer import SkippingSampler, warmup_length

    recipe = load(["data.val_size=100"])
    torch.manual_seed(recipe.seed)
    plugin = get_plugin("image")
    with tempfile.TemporaryDirectory() as assets:
        data = vaekit.build_recipe_data(plugin, recipe, Path(assets))
        model = build_model(plugin, recipe.model, data.info, Path(assets)).train()
    sampler = SkippingSampler(data.train, num_replicas=1, rank=0, shuffle=True, seed=recipe.seed, drop_last=True)
    loader = DataLoader(data.train, batch_size=recipe.trainer.batch_size, sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(recipe.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.trainer.lr, weight_decay=0.0)
    kl = recipe.objective.kl_schedule
    warmup = warmup_length(kl.warmup_steps, kl.warmup_fraction, steps, "objective.kl_schedule.warmup")
    batches, step_count = endless(loader), [0]

    def step() -> torch.Tensor:
        x = next(batches)["x"]
        posterior = model.encoder(x)
        z = posterior.rsample()
        log_px_z = model.decoder.log_prob(x, z)
        beta = min(1.0, step_count[0] / warmup) if warmup else 1.0
        loss = -log_px_z.mean() + beta * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_count[0] += 1
        return loss

    windows = time_steps(step, steps=steps, window=log_every)
    return median_rate(windows[1:]) * recipe.trainer.batch_size


def pythae_rate(python: str, steps: int, threads: int) -> float:
    """Images/s of pythae's TrainingPipeline on the same network, measured in its own interpreter."""
    out = subprocess.run([python, __file__, "--pythae-worker", "--steps", str(steps), "--threads", str(threads)],
                         check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"])


def pythae_worker(steps: int) -> None:
    """Inside the pythae venv: train the image plugin's network with pythae; print images/s as JSON."""
    sys.path[:0] = [str(REPO), str(REPO / "plugins" / "image")]  # vaekit and the plugin, not installed here
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.base_trainer.base_trainer import BaseTrainer
    from pythae_nets import Decoder, Encoder  # benchmarks/ is on sys.path when run as a script
    from vaekit_image import plugin

    from vaekit.runs import build_model

    recipe = load(["data.val_size=100"])
    torch.manual_seed(recipe.seed)
    with tempfile.TemporaryDirectory() as assets:
        data = vaekit.build_recipe_data(plugin, recipe, Path(assets))
        model = build_model(plugin, recipe.model, data.info, Path(assets))
    n = steps * recipe.trainer.batch_size
    images = torch.bernoulli(data.train.images[:n].float() / 255.0)


    vae = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=recipe.model.latent_dim, reconstruction_loss="bce"),
              encoder=Encoder(model.encoder), decoder=Decoder(model.decoder))
    epoch_seconds = []
    original = BaseTrainer.train_step

    def timed(self, epoch):
        started = time.perf_counter()
        loss = original(self, epoch)
        epoch_seconds.append(time.perf_counter() - started)
        return loss

    BaseTrainer.train_step = timed
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(output_dir=out, num_epochs=2, per_device_train_batch_size=recipe.trainer.batch_size,
                                   per_device_eval_batch_size=recipe.trainer.batch_size, optimizer_cls="AdamW",
                                   learning_rate=recipe.trainer.lr, steps_saving=None, no_cuda=True)
        TrainingPipeline(training_config=config, model=vae)(train_data=images, eval_data=images[:256])
    print(json.dumps({"images_per_s": n / epoch_seconds[-1], "epoch_seconds": epoch_seconds}))


def budget_nll(budget_s: float, images_per_s: float, k: int, n_test: int, run_dir: Path) -> dict:
    """Train mnist.yaml for about budget_s seconds with the vaekit Trainer; IW NLL on the test images."""
    from vaekit import load as load_model
    from vaekit.training.trainer import train

    batch = load([]).trainer.batch_size
    steps = max(10, int(budget_s * images_per_s / batch))
    recipe = load([f"trainer.max_steps={steps}", f"objective.kl_schedule.warmup_steps={min(2000, steps // 4)}",
                   "trainer.progress=false", f"trainer.eval_every={max(steps // 4, 1)}", "trainer.eval_batches=5",
                   f"trainer.checkpoint_every={steps}"])
    started = time.perf_counter()
    train(recipe, run_dir)
    train_s = time.perf_counter() - started
    model, plugin = load_model(run_dir)
    with tempfile.TemporaryDirectory() as assets:
        test = vaekit.build_recipe_data(plugin, recipe, Path(assets)).test
    torch.manual_seed(0)  # the dynamic binarization of the test images
    started = time.perf_counter()
    nll = test_nll(model, test, k, n_test, batch_size=100, with_elbo=False)
    return {"train_steps": steps, "train_seconds": round(train_s, 1), "iw_samples": k,
            "test_examples": nll["n_examples"], "nll_nats": round(nll["nll"], 3),
            "bits_per_dim": round(nll["nll"] / (784 * math.log(2)), 4),
            "eval_seconds": round(time.perf_counter() - started, 1)}


def throughput(args, tmp: Path) -> dict:
    """(a): alternating rounds of the vaekit trainer, the plain loop and (optionally) pythae, in images/s."""
    vaekit_rates, plain_rates, pythae_rates = [], [], []
    for r in range(args.rounds):
        vaekit_rates.append(trainer_rate(args.steps, args.log_every, tmp / f"throughput-{r}"))
        plain_rates.append(plain_rate(args.steps, args.log_every))
        print(f"round {r + 1}: vaekit {vaekit_rates[-1]:.0f} images/s, plain loop {plain_rates[-1]:.0f} images/s")
        if args.pythae_python:
            pythae_rates.append(pythae_rate(args.pythae_python, args.steps, args.threads))
            print(f"round {r + 1}: pythae {pythae_rates[-1]:.0f} images/s")
    vaekit_ips, plain_ips = statistics.median(vaekit_rates), statistics.median(plain_rates)
    result = {"vaekit_images_per_s": round(vaekit_ips, 1), "plain_images_per_s": round(plain_ips, 1),
              "vaekit_over_plain": round(vaekit_ips / plain_ips, 3),
              "rounds_vaekit": [round(v, 1) for v in vaekit_rates], "rounds_plain": [round(v, 1) for v in plain_rates]}
    print(f"(a) vaekit {vaekit_ips:.0f} images/s, plain {plain_ips:.0f} images/s, ratio vaekit/plain "
          f"{vaekit_ips / plain_ips:.3f}")
    if pythae_rates:
        pythae_ips = statistics.median(pythae_rates)
        result.update(pythae_images_per_s=round(pythae_ips, 1), vaekit_over_pythae=round(vaekit_ips / pythae_ips, 3),
                      rounds_pythae=[round(v, 1) for v in pythae_rates])
        print(f"(a) pythae {pythae_ips:.0f} images/s, ratio vaekit/pythae {vaekit_ips / pythae_ips:.3f}")
    return result


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    SMOKE.extend(seed_override(args))
    if args.smoke:
        args.steps, args.rounds, args.log_every, args.budget_minutes = 6, 1, 2, 0.05
        args.iw_samples, args.test_examples = 2, 20
        SMOKE.extend(["subset.train=512", "data.val_size=64"])
    if args.pythae_worker:
        return pythae_worker(args.steps)
    results = {"threads": args.threads, "steps_per_round": args.steps, "rounds": args.rounds}
    with work_folder(args) as work:
        if args.images_per_s:
            rate = args.images_per_s
            results["throughput"] = {"given_vaekit_images_per_s": rate}
        else:
            results["throughput"] = throughput(args, work)
            rate = results["throughput"]["vaekit_images_per_s"]
            write_result(args, "mnist_throughput", "MNIST images/s: vaekit trainer, a plain loop"
                         + (" and pythae 0.1.2" if args.pythae_python else "") + " on the same network and batches",
                         results["throughput"],
                         headline=["vaekit_images_per_s", "plain_images_per_s", "pythae_images_per_s"],
                         notes=f"{args.rounds} alternated rounds of {args.steps} steps, {args.threads} thread(s); "
                               "each side's median rate over its log windows after the first")
        if not args.skip_nll:
            results["nll"] = budget_nll(args.budget_minutes * 60, rate, args.iw_samples, args.test_examples,
                                        work / "nll")
            results["nll"]["budget_minutes"] = args.budget_minutes
            print(f"(b) {json.dumps(results['nll'])}")
            write_result(args, "mnist_budget_nll", f"recipes/image/mnist.yaml for {args.budget_minutes} minutes "
                         "(as steps at the measured trainer rate): test NLL", results["nll"], recipe=RECIPE,
                         headline=["nll_nats", "bits_per_dim", "train_steps"],
                         notes=f"k = {args.iw_samples} on the first {results['nll']['test_examples']} dynamically "
                               "binarized test images (seed 0)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
