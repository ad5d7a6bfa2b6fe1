"""The training loop: seeded, AdamW with warm-up + cosine decay, clipping, bf16, eval, atomic checkpoints.

    vaekit train recipes/image/shapes.yaml trainer.max_steps=200         # one process
    torchrun --nproc-per-node 2 -m vaekit train recipes/image/shapes.yaml # DDP, rank 0 writes files

Resuming (`--resume`) restores weights, optimizer, LR schedule, every RNG and the position in the
epoch's data order, so a resumed run ends with the same weights as an uninterrupted one. It may run
longer, elsewhere or report differently (RESUMABLE_KEYS); any other recipe change, or another number of
processes, is an error rather than a silently different run.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from safetensors.torch import load_model
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from .batch import to_device
from .checkpoint import build_model, checkpoints, load_training_state, rng_state, save_checkpoint, set_rng_state
from .evaluate import autocast, evaluate
from .objectives import ELBO, IWAE, Objective
from .plugin import PluginError, get_plugin
from .recipe import Recipe
from .schedules import KLSchedule


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, say); the last good checkpoint is left intact."""


# What a resumed run may change: where it runs, how often it reports, and how long it goes on. Anything
# else (data, model, objective, seed, optimiser) would silently make it a different run.
RESUMABLE_KEYS = {f"trainer.{key}" for key in (
    "epochs", "max_steps", "max_minutes", "device", "threads", "num_workers", "progress", "eval_every",
    "eval_batches", "checkpoint_every", "keep_last", "log_every", "samples")} | {"eval"}


def changed_keys(saved, current, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, saved value, current value) wherever two resolved recipes (nested dicts) differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [change for name in dict.fromkeys([*saved, *current])
                for change in changed_keys(saved.get(name), current.get(name), f"{prefix}{name}.")]
    return [] if saved == current else [(prefix.rstrip("."), saved, current)]


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name}: CUDA is not available on this machine")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_objective(recipe: Recipe, total_steps: int) -> Objective:
    """The recipe's objective with its KL schedule (cyclical spans the whole run)."""
    cfg = recipe.objective
    if cfg.kind == "iwae":
        return IWAE(cfg.iw_samples)
    s = cfg.kl_schedule
    schedule = KLSchedule(s.kind, start=s.start, end=cfg.beta, warmup_steps=s.warmup_steps,
                          total_steps=total_steps, n_cycles=s.n_cycles, ratio=s.ratio, steepness=s.steepness)
    return ELBO(schedule, free_bits=cfg.free_bits)


def lr_factor(step: int, warmup: int, total: int, kind: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine down to min_ratio."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class SkippingSampler(DistributedSampler):
    """DistributedSampler (shuffled by seed + epoch) that can start part-way into an epoch.

    With `lengths` (one size per example) and `bucket_batches` > 0 it also groups similar lengths: each
    pool of bucket_batches * batch_size shuffled indices is sorted by length and cut into batches, and
    the batches are shuffled. Padded text batches then waste far less work; each epoch stays a seeded
    permutation, so resume (`skip`) is still exact.
    """

    skip = 0

    def __init__(self, dataset, *, batch_size: int = 1, lengths=None, bucket_batches: int = 0, **kwargs):
        super().__init__(dataset, **kwargs)
        self.batch_size, self.lengths, self.bucket_batches = batch_size, lengths, bucket_batches

    def __iter__(self):
        indices = list(super().__iter__())
        if self.lengths is not None and self.bucket_batches > 0:
            indices = self._bucketed(indices)
        return iter(indices[self.skip:])

    def _bucketed(self, indices: list[int]) -> list[int]:
        pool, size = self.bucket_batches * self.batch_size, self.batch_size
        batches = []
        for start in range(0, len(indices), pool):
            ordered = sorted(indices[start:start + pool], key=lambda i: self.lengths[i])
            batches += [ordered[i:i + size] for i in range(0, len(ordered), size)]
        full = [b for b in batches if len(b) == size]  # a short batch (dropped by drop_last) stays last
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed + self.epoch + 1))
        return [i for b in [full[j] for j in order.tolist()] + [b for b in batches if len(b) < size] for i in b]

    def __len__(self):
        return super().__len__() - self.skip


class Trainer:
    """Trains a recipe into a run folder (see DESIGN.md: recipe.yaml, metrics.jsonl, samples/, checkpoints/)."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, resume: bool = False):
        self.recipe, self.run_dir, self.resume = recipe, Path(run_dir), resume
        self.cfg = recipe.trainer
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = resolve_device(self.cfg.device)
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0

    # -- set-up ------------------------------------------------------------------------------------
    def _setup(self) -> None:
        recipe, cfg = self.recipe, self.cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        seed_everything(recipe.seed)
        self.plugin = get_plugin(recipe.plugin)
        assets = self.run_dir / "assets"
        if self.is_main:
            assets.mkdir(parents=True, exist_ok=True)
        self._barrier()
        self.data = self.plugin.build_data(recipe.data, seed=recipe.seed, assets=assets)
        lengths = self.data.lengths
        if cfg.bucket_batches and (lengths is None or len(lengths) != len(self.data.train)):
            raise TrainingError(f"trainer.bucket_batches: the {recipe.plugin} plugin gives no length for each training "
                                f"example (DataBundle.lengths), so it cannot bucket; set trainer.bucket_batches=0")
        self.sampler = SkippingSampler(self.data.train, num_replicas=self.world, rank=self.rank, shuffle=True,
                                       seed=recipe.seed, drop_last=True, batch_size=cfg.batch_size,
                                       lengths=lengths, bucket_batches=cfg.bucket_batches)
        # A private generator keeps the loader from drawing on the global RNG, which resume restores.
        self.loader = DataLoader(self.data.train, batch_size=cfg.batch_size, sampler=self.sampler, drop_last=True,
                                 collate_fn=self.data.collate, num_workers=cfg.num_workers,
                                 generator=torch.Generator().manual_seed(recipe.seed),
                                 pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise TrainingError(f"the training set ({len(self.data.train)} examples) is smaller than one batch "
                                f"of {cfg.batch_size} per process; lower trainer.batch_size")
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.model = build_model(self.plugin, recipe.model, self.data.info, assets).to(self.device)
        self.objective = make_objective(recipe, self.total_steps)
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, fused=self.device.type in ("cpu", "cuda"))  # one fused kernel: ~5% faster small-model steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, cfg.warmup_steps, self.total_steps, cfg.lr_schedule, cfg.min_lr_ratio))
        # Ranks share the weights (DDP broadcasts rank 0's) but draw their own noise (z samples, dropout).
        seed_everything(recipe.seed + 1000 * self.rank)
        self.net = self.model
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids,
                                               find_unused_parameters=cfg.find_unused_parameters)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    # -- files -----------------------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        if not self.is_main:
            return
        resolved = yaml.safe_dump(self.recipe.to_dict(), sort_keys=False)
        if self.resume:
            if not checkpoints(self.run_dir):
                raise TrainingError(f"--resume: {self.run_dir} has no checkpoints to resume from")
            for partial in (self.run_dir / "checkpoints").glob(".tmp-*"):  # left by a kill mid-write
                shutil.rmtree(partial, ignore_errors=True)
            self._check_same_recipe(yaml.safe_load(resolved))  # read back: the same types as the saved file
        elif checkpoints(self.run_dir):
            raise TrainingError(f"{self.run_dir} already holds a run; pass --resume to continue it or --out to "
                                f"start a new one elsewhere")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "recipe.yaml").write_text(f"# resolved from {self.recipe.source}\n" + resolved)

    def _check_same_recipe(self, current: dict) -> None:
        """--resume continues the run's own recipe; changes beyond RESUMABLE_KEYS are an error naming them."""
        saved_file = self.run_dir / "recipe.yaml"
        if not saved_file.is_file():
            return
        changed = [(key, old, new) for key, old, new in changed_keys(yaml.safe_load(saved_file.read_text()), current)
                   if key not in RESUMABLE_KEYS and key.split(".")[0] not in RESUMABLE_KEYS]
        if changed:
            described = ", ".join(f"{key} ({old!r} -> {new!r})" for key, old, new in changed)
            raise TrainingError(f"--resume: the recipe differs from {saved_file} in {described}; resume with the "
                                f"run's own recipe, or train into a new --out")

    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                self.writer.add_scalar(f"{record['split']}/{key}", value, record["step"])

    def _save(self) -> None:
        rng_per_rank = [rng_state()]
        if self.distributed:  # every process's generators, so each resumes its own random stream
            rng_per_rank = [None] * self.world
            dist.all_gather_object(rng_per_rank, rng_state())
        if self.is_main:
            state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                     "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "rng": rng_per_rank}
            save_checkpoint(self.model, state, self.run_dir / "checkpoints" / f"step-{self.step}")
            for old in checkpoints(self.run_dir)[:-max(1, self.cfg.keep_last)]:
                shutil.rmtree(old, ignore_errors=True)
        self._barrier()

    def _restore(self) -> None:
        folder = checkpoints(self.run_dir)[-1]
        load_model(self.model, str(folder / "model.safetensors"), device=str(self.device))
        state = load_training_state(folder)
        if len(state["rng"]) != self.world:  # each process's data shard and noise stream depend on the count
            raise TrainingError(f"--resume: {folder} was written by {len(state['rng'])} process(es), this run has "
                                f"{self.world}; resume with torchrun --nproc-per-node {len(state['rng'])}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][self.rank])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        if self.is_main:  # forget what the interrupted run logged after this checkpoint
            log = self.run_dir / "metrics.jsonl"
            if log.exists():
                kept = [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= self.step]
                log.write_text("".join(line + "\n" for line in kept))

    # -- evaluation --------------------------------------------------------------------------------
    def _evaluate(self) -> dict | None:
        result = None
        if self.is_main and self.data.val is not None:
            loader = DataLoader(self.data.val, batch_size=self.recipe.eval.batch_size, shuffle=False,
                                collate_fn=self.data.collate)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.recipe.seed + self.step)
                summary = evaluate(self.model, loader, max_batches=self.cfg.eval_batches,
                                   precision=self.cfg.precision)
                result = {"step": self.step, "split": "val", **{k: v for k, v in summary.items()
                                                                 if k != "kl_per_dim"}}
                self._log(result)
                self._write_samples()
        self._barrier()
        return result

    def _write_samples(self) -> None:
        if self.cfg.samples <= 0:
            return
        self.model.eval()
        try:
            with torch.no_grad():
                self.plugin.sample(self.model, self.cfg.samples, None,
                                   self.run_dir / "samples" / f"step-{self.step}")
        except PluginError:
            pass  # this plugin writes no samples
        finally:
            self.model.train()

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train to trainer.max_steps / epochs; returns the final validation summary."""
        self._setup()  # first: the plugin may fill in recipe defaults from the data (image size, say)
        self._prepare_run_dir()
        self._barrier()
        if self.resume:
            self._restore()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir)) if self.is_main else None
        cfg = self.cfg
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.recipe.name or "train",
                   disable=not cfg.progress or not self.is_main, mininterval=1.0, dynamic_ncols=True)
        self.model.train()
        sums, count, started = None, 0, time.perf_counter()
        self.fit_started = started
        done = self.step >= self.total_steps
        while not done:
            self.sampler.set_epoch(self.epoch)
            self.sampler.skip = self.batch_in_epoch * cfg.batch_size
            for batch in self.loader:
                terms = self._train_step(batch)
                self.step += 1
                self.batch_in_epoch += 1
                values = torch.stack([terms.loss.detach(), -terms.log_likelihood.detach().mean(),
                                      terms.kl.detach().mean()]).float()
                sums, count = (values if sums is None else sums + values), count + 1
                if not math.isfinite(values[0].item()):
                    raise TrainingError(
                        f"step {self.step}: the loss became {values[0].item()} (rec {values[1]:.4g}, "
                        f"kl {values[2]:.4g}); stopped. The last good checkpoint is intact: lower trainer.lr, "
                        f"set trainer.grad_clip or precision=fp32, then --resume")
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    loss, rec, kl = (sums / count).tolist()
                    elapsed = time.perf_counter() - started
                    self._log({"step": self.step, "split": "train", "epoch": self.epoch, "loss": loss, "rec": rec,
                               "kl": kl, "beta": terms.beta, "lr": self.scheduler.get_last_lr()[0],
                               "steps_per_s": count / max(elapsed, 1e-9)})
                    bar.set_postfix(loss=f"{loss:.3f}", rec=f"{rec:.3f}", kl=f"{kl:.3f}", beta=f"{terms.beta:.3g}",
                                    refresh=False)
                    sums, count, started = None, 0, time.perf_counter()
                bar.update(1)
                done = self.step >= self.total_steps or self._out_of_time()
                if self.step % cfg.eval_every == 0 and not done:
                    self._evaluate()
                if self.step % cfg.checkpoint_every == 0 or done:
                    self._save()
                if done:
                    break
            else:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        bar.close()
        final = self._evaluate()
        if self.writer is not None:
            self.writer.close()
        return final or {}

    def _out_of_time(self) -> bool:
        """trainer.max_minutes reached (rank 0's clock decides, so every process stops at the same step)."""
        if not self.cfg.max_minutes:
            return False
        over = torch.tensor(float(time.perf_counter() - self.fit_started > 60 * self.cfg.max_minutes))
        if self.distributed:
            dist.broadcast(over, src=0)
        return bool(over)

    def _train_step(self, batch):
        batch = to_device(batch, self.device)
        with autocast(self.device, self.cfg.precision):
            terms = self.net(batch["x"], batch.get("c"), objective=self.objective, step=self.step)
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return terms


def train(recipe: Recipe, run_dir: str | Path, resume: bool = False) -> dict:
    """Train recipe into run_dir (continuing its last checkpoint when resume); final validation summary."""
    trainer = Trainer(recipe, run_dir, resume)
    try:
        return trainer.fit()
    finally:
        if trainer.distributed and dist.is_initialized():
            dist.destroy_process_group()
