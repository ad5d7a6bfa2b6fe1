"""A training loop bounded by seconds of a clock (CPU or wall), for benchmarks that compare budgets.

The vaekit Trainer stops on wall time (trainer.max_minutes); a benchmark that promises "N CPU-seconds of
training" needs process time instead, so it runs this loop. Schedules follow the recipe as the trainer
would: warm-ups given as fractions are fractions of the steps the budget allows, planned from the speed
of 20 steps after the first few (on a GPU those autotune and allocate, and run many times slower). Like the
trainer under trainer.max_minutes, the run ends on the clock, not on the planned count: schedules follow
whichever of step and spent budget is further along, so a slow start never ends the run early.
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader

from vaekit.core.batch import to_device
from vaekit.training.trainer import lr_factor, make_objective, warmup_length

UNTIMED_STEPS, PLANNING_STEPS = 5, 20  # steps skipped, then timed, before the schedules are planned
CURVE_POINTS = 40  # training-loss records kept over a run: enough to see a collapse and when it came
# A step whose gradient norm (before clipping) is this many times the median of the last SPIKE_WINDOW steps' is
# recorded as a spike: fsdd_strings showed encoder outputs exploding on ordinary batches (posterior means of
# 300-800 against ~5), a 1,000x jump in the norm that the 40-point curve misses.
SPIKE_RATIO, SPIKE_WINDOW, MAX_SPIKES = 100.0, 100, 200


def train_for_budget(recipe, bundle, model, budget: float, clock: Callable[[], float] = time.process_time,
                     max_steps: int | None = None, on_batch: Callable[[dict], None] | None = None,
                     plan_steps: int | None = None) -> dict:
    """Train until `budget` seconds of `clock` are spent (or max_steps); steps, epochs, CPU and wall seconds, and
    a curve of batch figures (step, loss, rec and KL in nats, β) about every 40th of the planned steps, and every
    gradient-norm spike (SPIKE_RATIO) with its batch figures. plan_steps fixes the schedules' length (a replay
    of the first max_steps steps of a longer run) instead of planning it from max_steps or the clock."""
    cfg = recipe.trainer
    loader = DataLoader(bundle.train, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        collate_fn=bundle.collate, generator=torch.Generator().manual_seed(recipe.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps, objective, planned = plan_steps or max_steps or 10**9, None, bool(plan_steps or max_steps)
    step, epochs, epoch_seconds, terms, curve, spikes = 0, 0, [], None, [], []
    norms = collections.deque(maxlen=SPIKE_WINDOW)
    cpu_start, wall_start, clock_start = time.process_time(), time.perf_counter(), clock()

    def over() -> bool:
        return clock() - clock_start >= budget or (bool(max_steps) and step >= max_steps)

    def position() -> int:  # the step, or the spent budget's share of the planned steps when that is further
        if max_steps or plan_steps or not planned:
            return step
        return min(total_steps, max(step, int((clock() - clock_start) / budget * total_steps)))

    model.train()
    while not over():
        epoch_wall = time.perf_counter()
        for batch in loader:
            if step == UNTIMED_STEPS:
                timed_from = clock()
            if step == UNTIMED_STEPS + PLANNING_STEPS and not (max_steps or plan_steps):
                per_step = (clock() - timed_from) / PLANNING_STEPS
                total_steps = max(step + 1, step + int((budget - (clock() - clock_start)) / per_step))
                objective, planned = None, True
            if objective is None:
                objective = make_objective(recipe, total_steps)
                warmup = warmup_length(cfg.warmup_steps, cfg.warmup_fraction, total_steps, "trainer.warmup")
            at = position()
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(at, warmup, total_steps, cfg.lr_schedule, cfg.min_lr_ratio)
            batch = to_device(batch, model.device)
            terms = model(batch["x"], batch.get("c"), objective=objective, step=at)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            if cfg.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            else:
                norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
            optimizer.step()
            norm = norm.item()
            if len(norms) == SPIKE_WINDOW and norm > SPIKE_RATIO * statistics.median(norms) \
                    and len(spikes) < MAX_SPIKES:
                spikes.append({"step": step, "grad_norm": round(norm, 1),
                               **{k: round(v, 4) for k, v in terms.scalars().items()}})
            norms.append(norm)
            if on_batch is not None:
                on_batch(batch)
            if step % max(1, min(total_steps, 10**6) // CURVE_POINTS) == 0:
                curve.append({"step": step, **{k: round(v, 4) for k, v in terms.scalars().items()}})
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
            "last_train_loss": terms.loss.item() if terms is not None else None, "curve": curve,
            "grad_spikes": spikes}
