"""A training loop bounded by seconds of a clock (CPU or wall), for benchmarks that compare budgets.

The vaekit Trainer stops on wall time (trainer.max_minutes); a benchmark that promises "N CPU-seconds of
training" needs process time instead, so it runs this loop. Schedules follow the recipe as the trainer
would: warm-ups given as fractions are fractions of the steps the budget allows, planned from the speed
of the first 20 steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader

from vaekit.batch import to_device
from vaekit.trainer import lr_factor, make_objective, warmup_length

PLANNING_STEPS = 20  # steps timed before the schedules are planned over the whole budget


def train_for_budget(recipe, bundle, model, budget: float, clock: Callable[[], float] = time.process_time,
                     max_steps: int | None = None, on_batch: Callable[[dict], None] | None = None) -> dict:
    """Train until `budget` seconds of `clock` are spent (or max_steps); steps, epochs, CPU and wall seconds."""
    cfg = recipe.trainer
    loader = DataLoader(bundle.train, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        collate_fn=bundle.collate, generator=torch.Generator().manual_seed(recipe.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps, objective = max_steps or 10**9, None
    step, epochs, epoch_seconds, terms = 0, 0, [], None
    cpu_start, wall_start, clock_start = time.process_time(), time.perf_counter(), clock()

    def over() -> bool:
        return clock() - clock_start >= budget or step >= total_steps

    model.train()
    while not over():
        epoch_wall = time.perf_counter()
        for batch in loader:
            if step == PLANNING_STEPS and not max_steps:
                total_steps = max(step + 1, int(budget / ((clock() - clock_start) / step)))
                objective = None
            if objective is None:
                objective = make_objective(recipe, total_steps)
                warmup = warmup_length(cfg.warmup_steps, cfg.warmup_fraction, total_steps, "trainer.warmup")
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, warmup, total_steps, cfg.lr_schedule, cfg.min_lr_ratio)
            batch = to_device(batch, model.device)
            terms = model(batch["x"], batch.get("c"), objective=objective, step=step)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if on_batch is not None:
                on_batch(batch)
            step += 1
            if over():
                break
        else:
            epochs += 1
            epoch_seconds.append(time.perf_counter() - epoch_wall)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    model.eval()
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return {"steps": step, "epochs_completed": epochs, "cpu_seconds": cpu, "wall_seconds": wall,
            "wall_seconds_per_epoch": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
            "cpu_seconds_per_epoch": cpu / max(1e-9, step / len(loader)),
            "last_train_loss": terms.loss.item() if terms is not None else None}
