"""How much the vaekit trainer costs over a plain PyTorch loop: same conv VAE, same batches, alternated.

    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --steps 200 --rounds 4 --threads 1
                                                # benchmarks/results/trainer_overhead.json
    python benchmarks/trainer_overhead.py --smoke # a few steps, written under a temporary folder

Both sides do the same work per step (ELBO forward, backward, gradient clipping, AdamW, a cosine LR
schedule) on the same pre-generated binarized 28x28 batches; the vaekit side adds what the trainer
does (progress bar, metrics.jsonl, TensorBoard, NaN check, data-order bookkeeping). Rounds alternate
so a noisy shared machine slows both alike; the ratio of total steps/s is the figure to report.
Target: vaekit >= 0.97x the plain loop.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from common import add_common_flags, endless, overall_rate, time_steps, trainer_windows, work_folder, write_result
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vaekit
from vaekit.config.recipe import ObjectiveConfig, Recipe, TrainerConfig
from vaekit.training.trainer import Trainer


@dataclass
class BenchData:
    n: int = 128 * 50


@dataclass
class BenchModel:
    latent_dim: int = 32


class ConvEncoder(nn.Module):
    def __init__(self, latent_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, 2 * latent_dim))

    def forward(self, x, c=None):
        return vaekit.DiagonalGaussian(*self.net(x).chunk(2, -1))


class ConvDecoder(nn.Module):
    def __init__(self, latent_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, 512), nn.ReLU(), nn.Linear(512, 64 * 7 * 7), nn.ReLU(),
                                 nn.Unflatten(1, (64, 7, 7)), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, 1, 4, 2, 1))
        self.likelihood = vaekit.Bernoulli()

    def log_prob(self, x, z, c=None):
        return self.likelihood.log_prob(self.net(z), x)

    def generate(self, z, c=None):
        return torch.sigmoid(self.net(z))


def make_images(n: int) -> torch.Tensor:
    """Binarized blobs: fixed random data so both loops see identical batches."""
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 28, 28, generator=g) < 0.2).float()


class Dict(TensorDataset):
    def __getitem__(self, i):
        return {"x": self.tensors[0][i]}


class BenchPlugin(vaekit.Plugin):
    name = "bench-conv"
    data_config, model_config = BenchData, BenchModel

    def build_data(self, data, *, seed, assets):
        images = make_images(data.n)
        return vaekit.DataBundle(Dict(images), None, None, info={})

    def build_model(self, model, info, *, assets):
        return vaekit.VAE(ConvEncoder(model.latent_dim), ConvDecoder(model.latent_dim), model.latent_dim)


def run_vaekit(steps: int, batch_size: int, workdir: Path, seed: int) -> float:
    """Steps/s of the vaekit trainer's loop (set-up, final eval and checkpoint excluded via its own log)."""
    trainer_cfg = TrainerConfig(epochs=10**6, max_steps=steps, batch_size=batch_size, lr=1e-3, eval_every=10**9,
                                checkpoint_every=10**9, log_every=min(50, steps), samples=0, progress=True,
                                device="cpu")
    recipe = Recipe(plugin="bench-conv", data=BenchData(), model=BenchModel(), seed=seed,
                    objective=ObjectiveConfig(), trainer=trainer_cfg, name="bench")
    run = Path(tempfile.mkdtemp(dir=workdir))
    Trainer(recipe, run).fit()
    return overall_rate(trainer_windows(run))


def run_plain(steps: int, batch_size: int, seed: int) -> float:
    """Steps/s of a hand-written loop doing the same work."""
    torch.manual_seed(seed)
    model = vaekit.VAE(ConvEncoder(32), ConvDecoder(32), 32)
    loader = DataLoader(Dict(make_images(BenchData().n)), batch_size=batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    batches = endless(loader)

    def step() -> torch.Tensor:
        x = next(batches)["x"]
        q = model.posterior(x)
        loss = -(model.log_likelihood(x, q.rsample()) - q.kl()).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        return loss

    return overall_rate(time_steps(step, steps=steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the CI machine has 2 cores)")
    args = add_common_flags(parser).parse_args()
    if args.smoke:
        args.steps, args.rounds, args.batch_size = 4, 1, 16
    seed = 0 if args.seed is None else args.seed
    torch.set_num_threads(args.threads)
    vaekit.register_plugin(BenchPlugin())
    results = {"vaekit": [], "plain": []}
    with work_folder(args) as work:
        run_plain(min(20, args.steps), args.batch_size, seed)  # warm-up: allocator, kernels
        for round_ in range(args.rounds):
            order = ["plain", "vaekit"] if round_ % 2 == 0 else ["vaekit", "plain"]
            for side in order:
                rate = run_plain(args.steps, args.batch_size, seed) if side == "plain" else \
                    run_vaekit(args.steps, args.batch_size, work, seed)
                results[side].append(rate)
                print(f"round {round_ + 1} {side:>6}: {rate:7.2f} steps/s", flush=True)
        mean = {side: sum(rates) / len(rates) for side, rates in results.items()}
        summary = {"ratio": mean["vaekit"] / mean["plain"], "vaekit_steps_per_s": mean["vaekit"],
                   "plain_steps_per_s": mean["plain"], "steps": args.steps, "rounds": args.rounds,
                   "batch_size": args.batch_size, "threads": args.threads, "per_round": results}
        print(f"vaekit {mean['vaekit']:.2f} steps/s, plain {mean['plain']:.2f} steps/s, "
              f"ratio {summary['ratio']:.3f} (target >= 0.97)")
        write_result(args, "trainer_overhead", "the vaekit trainer against a hand-written loop: same conv VAE, "
                     "same batches, alternated", summary,
                     metrics={"ratio": round(summary["ratio"], 3), "vaekit_steps_per_s": round(mean["vaekit"], 2),
                              "plain_steps_per_s": round(mean["plain"], 2)},
                     notes=f"{args.rounds} alternated rounds of {args.steps} steps, batch {args.batch_size}, "
                           f"{args.threads} torch thread(s); the ratio of the mean steps/s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
