"""The training clock: how long the run has trained (across resumes), trainer.max_minutes' budget, timed checkpoints
(trainer.checkpoint_minutes), and where the run is when time rather than steps ends it.

trainer.clock says what the budget counts: `wall` (the default) wall-clock time, `process` this process's CPU
time (time.process_time, all its threads), so that "N CPU-seconds of training" holds on a machine shared with
other work. Timed checkpoints always follow wall-clock time: they bound the work a crash loses.
"""

from __future__ import annotations

import math
import time

import torch
import torch.distributed as dist

# trainer.clock: what trainer.max_minutes counts
CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


class TrainingClock:
    """Seconds of training since the run began (`elapsed`, by trainer.clock, updated by tick()); rank 0's count
    rules every rank."""

    def __init__(self, cfg, distributed: bool = False):
        self.cfg, self.distributed = cfg, distributed
        self.budget_clock = CLOCKS[cfg.clock]
        self.seconds_before = 0.0  # training time of the run before this process (from the checkpoint)
        self.elapsed = 0.0  # seconds of training in this run, across resumes
        self.started = self.saved_at = 0.0  # wall-clock times (time.perf_counter)
        self.budget_started = 0.0  # the budget clock's time at start()

    def start(self) -> float:
        """The first step is about to begin; returns the wall-clock time (time.perf_counter) it begins at."""
        self.budget_started = self.budget_clock()
        self.started = self.saved_at = time.perf_counter()
        self.elapsed = self.seconds_before
        return self.started

    def saved(self) -> None:
        """A checkpoint was just written: the next timed one is due trainer.checkpoint_minutes from now."""
        self.saved_at = time.perf_counter()

    def tick(self, stop_signal: int | None) -> tuple[bool, bool, int]:
        """(out of time, a timed checkpoint is due, stop signal or 0), as rank 0 sees them, so all ranks agree."""
        now = time.perf_counter()
        values = torch.tensor([self.seconds_before + self.budget_clock() - self.budget_started, now - self.saved_at,
                               float(stop_signal or 0)], dtype=torch.float64)
        if self.distributed:
            dist.broadcast(values, src=0)
        self.elapsed = values[0].item()
        cfg = self.cfg
        out_of_time = bool(cfg.max_minutes) and self.elapsed > 60 * cfg.max_minutes
        due = cfg.checkpoint_minutes > 0 and values[1].item() > 60 * cfg.checkpoint_minutes
        return out_of_time, due, int(values[2].item())

    def position(self, step: int, total_steps: int) -> float:
        """Where the run is, in steps: the step, or the time budget's share of total_steps when that is further.

        Under trainer.max_minutes the run ends at whichever limit comes first, so fraction-of-the-run
        schedules (warm-ups, β, cosine decay) follow whichever is nearer its end. Without a time budget
        this is the step itself, so resuming stays exact.
        """
        if not self.cfg.max_minutes:
            return step
        return max(step, self.elapsed / (60 * self.cfg.max_minutes) * total_steps)

    def projected_last_step(self, step: int, first_step: int, total_steps: int) -> int:
        """The step the run will end at, for the progress bar: total_steps, or sooner if trainer.max_minutes ends it."""
        ran = self.budget_clock() - self.budget_started  # by the clock the budget counts
        if not self.cfg.max_minutes or step <= first_step or ran <= 0:
            return total_steps
        left = max(0.0, 60 * self.cfg.max_minutes - self.elapsed)
        return min(total_steps, step + math.ceil(left * (step - first_step) / ran))
