"""The train records of metrics.jsonl: every trainer.log_every steps (and at the run's last), the loss, rec and KL
(nats per example) averaged over the steps since the record before, β, the learning rate, steps per second (wall
clock) and the objective's extra terms. What a record averages over is checkpointed, so a resumed run writes the
records an uninterrupted one does."""

from __future__ import annotations

import time

import torch

from .run_folder import RunFolder


class TrainLog:
    """Sums each step's figures on the device (no synchronisation) and writes them out as one record when due."""

    def __init__(self, folder: RunFolder, log_every: int, scheduler):
        self.folder, self.log_every, self.scheduler = folder, log_every, scheduler
        self.sums: torch.Tensor | None = None  # loss, rec, kl summed since the last record
        self.count = 0  # steps in sums
        self.window_started = 0.0  # wall-clock time (time.perf_counter) the record's window began

    def start(self, now: float) -> None:
        """The first step of this process is about to begin at wall-clock time now (time.perf_counter)."""
        self.window_started = now

    def add(self, terms) -> None:
        """One training step's terms."""
        values = torch.stack([terms.loss.detach(), -terms.log_likelihood.detach().mean(),
                              terms.kl.detach().mean()]).float()
        self.sums = values if self.sums is None else self.sums + values
        self.count += 1

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.log_every == 0 or step == total_steps

    def write(self, step: int, epoch: int, terms) -> tuple[float, float, float]:
        """The record of the steps since the last one, ending at step with terms; returns its (loss, rec, kl)."""
        loss, rec, kl = (self.sums / self.count).tolist()
        elapsed = time.perf_counter() - self.window_started
        self.folder.log({"step": step, "split": "train", "epoch": epoch, "loss": loss, "rec": rec, "kl": kl,
                         "beta": terms.beta, "lr": self.scheduler.get_last_lr()[0],
                         "steps_per_s": self.count / max(elapsed, 1e-9), **terms.extra})
        self.sums, self.count, self.window_started = None, 0, time.perf_counter()
        return loss, rec, kl

    def state_dict(self) -> dict:
        return {"log_sums": self.sums, "log_count": self.count}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        sums = state.get("log_sums")  # what the next record averages over, from before the checkpoint
        self.sums = sums.to(device) if isinstance(sums, torch.Tensor) else None
        self.count = int(state.get("log_count", 0)) if self.sums is not None else 0
