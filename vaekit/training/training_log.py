"""The train records of metrics.jsonl: every trainer.log_every steps and at the run's last, the loss, rec and KL
(nats per example) averaged over the steps since the record before, β, the learning rate, steps per second (wall
clock), seconds of training so far (`train_seconds`, by trainer.clock: what trainer.max_minutes bounds), the largest
gradient norm (before clipping), the gradient-norm spikes, what the plugin's batch_amounts counts (speech: seconds of
audio) and the objective's extra terms. What a record covers is checkpointed, so a resumed run writes the records
an uninterrupted one does.

A spike is a step whose gradient norm is over SPIKE_RATIO times the median of the SPIKE_WINDOW steps before it: an
encoder whose outputs explode on ordinary batches shows as a jump of that size, which averaged figures miss.
"""

from __future__ import annotations

import statistics
import time

import torch

from .run_folder import RunFolder

SPIKE_RATIO, SPIKE_WINDOW = 100.0, 100
MAX_SPIKES = 20  # spikes listed in one record (grad_spikes_total counts them all)


class TrainLog:
    """Keeps each step's figures on the device (no synchronisation) and writes them out as one record when due."""

    def __init__(self, folder: RunFolder, log_every: int, scheduler):
        self.folder, self.log_every, self.scheduler = folder, log_every, scheduler
        self.sums: torch.Tensor | None = None  # loss, rec, kl summed since the last record
        self.count = 0  # steps in sums
        self.losses: list[torch.Tensor] = []  # each step's loss since the last record
        self.grad_norms: list[torch.Tensor] = []  # the SPIKE_WINDOW steps' before the record's, then its own
        self.amounts: dict[str, torch.Tensor] = {}  # the plugin's batch_amounts, summed since the last record
        self.window_started = 0.0  # wall-clock time (time.perf_counter) the record's window began

    def start(self, now: float) -> None:
        """The first step of this process is about to begin at wall-clock time now (time.perf_counter)."""
        self.window_started = now

    def add(self, terms, grad_norm: torch.Tensor | None, amounts: dict[str, torch.Tensor]) -> None:
        """One training step: its terms, its gradient norm before clipping, and the plugin's amounts of its batch."""
        values = torch.stack([terms.loss.detach(), -terms.log_likelihood.detach().mean(),
                              terms.kl.detach().mean()]).float()
        self.sums = values if self.sums is None else self.sums + values
        self.count += 1
        self.losses.append(values[0])
        if grad_norm is not None:
            self.grad_norms.append(grad_norm.detach().float())
        for name, amount in amounts.items():
            self.amounts[name] = self.amounts[name] + amount if name in self.amounts else amount

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.log_every == 0 or step == total_steps

    def write(self, step: int, epoch: int, terms, train_seconds: float) -> tuple[float, float, float]:
        """The record of the steps since the last one, ending at step with terms; returns its (loss, rec, kl)."""
        loss, rec, kl = (self.sums / self.count).tolist()
        elapsed = time.perf_counter() - self.window_started
        amounts = {name: float(amount) for name, amount in self.amounts.items()}
        self.folder.log({"step": step, "split": "train", "epoch": epoch, "loss": loss, "rec": rec, "kl": kl,
                         "beta": terms.beta, "lr": self.scheduler.get_last_lr()[0],
                         "steps_per_s": self.count / max(elapsed, 1e-9), "train_seconds": train_seconds,
                         **self._gradient_figures(step), **amounts, **terms.extra})
        self.sums, self.count, self.window_started = None, 0, time.perf_counter()
        self.losses, self.grad_norms, self.amounts = [], self.grad_norms[-SPIKE_WINDOW:], {}
        return loss, rec, kl

    def _gradient_figures(self, step: int) -> dict:
        """grad_norm_max over the record's steps, and its spikes (step, gradient norm, loss) when there are any."""
        norms = torch.stack(self.grad_norms).cpu().tolist() if self.grad_norms else []
        first = len(norms) - self.count  # where the record's own steps begin in norms
        if first < 0 or len(self.losses) != self.count:  # a checkpoint written without them
            return {}
        losses = torch.stack(self.losses).cpu().tolist()
        spikes = [{"step": step - self.count + 1 + i, "grad_norm": norms[first + i], "loss": losses[i]}
                  for i in range(self.count) if first + i >= SPIKE_WINDOW
                  and norms[first + i] > SPIKE_RATIO * statistics.median(norms[first + i - SPIKE_WINDOW:first + i])]
        figures = {"grad_norm_max": max(norms[first:])}
        if spikes:
            figures.update(grad_spikes=spikes[:MAX_SPIKES], grad_spikes_total=len(spikes))
        return figures

    def state_dict(self) -> dict:
        return {"log_sums": self.sums, "log_count": self.count,
                "log_window": {"losses": torch.stack(self.losses) if self.losses else None,
                               "grad_norms": torch.stack(self.grad_norms) if self.grad_norms else None,
                               "amounts": dict(self.amounts)}}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        sums = state.get("log_sums")  # what the next record averages over, from before the checkpoint
        self.sums = sums.to(device) if isinstance(sums, torch.Tensor) else None
        self.count = int(state.get("log_count", 0)) if self.sums is not None else 0
        window = state.get("log_window") or {}
        unstacked = {key: list(window[key].to(device).unbind()) if isinstance(window.get(key), torch.Tensor) else []
                     for key in ("losses", "grad_norms")}
        self.losses, self.grad_norms = unstacked["losses"], unstacked["grad_norms"]
        self.amounts = {name: amount.to(device) for name, amount in (window.get("amounts") or {}).items()}
