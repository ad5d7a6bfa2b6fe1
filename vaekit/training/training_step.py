"""One training step: an AdamW update (forward in trainer.precision, backward, clipping, the divergence guard, the LR
schedule), preceded while aggressive inference lasts by its encoder-only inner loop (aggressive.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch.utils.data import default_collate

from ..core.batch import to_device
from ..evaluation.evaluate import autocast
from .aggressive import AggressiveInference, random_indices
from .divergence import DivergenceGuard
from .run_folder import RunFolder
from .training_errors import TrainingError


class TrainingStep:
    """Makes the run's steps; `grad_norm` is the last training update's gradient norm (before clipping)."""

    def __init__(self, cfg, net: torch.nn.Module, model: torch.nn.Module, objective, optimizer, scheduler,
                 guard: DivergenceGuard, device: torch.device, position: Callable[[int], float]):
        self.cfg, self.net, self.model, self.objective = cfg, net, model, objective
        self.optimizer, self.scheduler, self.guard, self.device = optimizer, scheduler, guard, device
        self.position = position  # where the run is, in steps, for the schedules (TrainingClock.position)
        self.grad_norm: torch.Tensor | None = None

    def __call__(self, batch: dict, step: int):
        """The training update for the batch at `step` (the steps done before it); the objective's terms."""
        return self.update(to_device(batch, self.device), step)

    def update(self, batch: dict, step: int, frozen=(), schedule: bool = True):
        """One optimizer update on batch, leaving the frozen parameters as they are; schedule: a training step,
        which also moves the learning-rate schedule on (aggressive inference's inner updates do not)."""
        try:
            with autocast(self.device, self.cfg.precision):
                terms = self.net(batch["x"], batch.get("c"), objective=self.objective, step=self.position(step))
            self.optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
        except RuntimeError as exc:  # oneDNN's CPU LSTM, for one, refuses bf16 with a message naming neither
            if self.cfg.precision != "bf16" or self.device.type != "cpu" or isinstance(exc, TrainingError):
                raise
            raise TrainingError(f"trainer.precision=bf16 failed on the CPU at step {step + 1} "
                                f"({str(exc).split('. ')[0].strip()}); set trainer.precision=fp32, or train "
                                f"on a GPU") from None
        for p in frozen:  # AdamW skips a parameter without a gradient: no step, no decay, its moments kept
            p.grad = None
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, self.cfg.grad_clip)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        self.guard.check(self.model, terms, grad_norm, step)  # before the update reaches the weights
        self.optimizer.step()
        if schedule:
            self.scheduler.step()
            self.grad_norm = grad_norm
        return terms


class AggressiveStep(TrainingStep):
    """trainer.aggressive_inference: at each check, I(x; z) on validation batches decides whether the phase goes on;
    while it does, encoder-only updates on this batch and random ones come before the decoder's update."""

    def __init__(self, *parts, aggressive: AggressiveInference, data, seed: int,
                 mutual_information: Callable[[int], float], folder: RunFolder, is_main: bool, total_steps: int):
        super().__init__(*parts)
        self.aggressive, self.data, self.seed = aggressive, data, seed
        self.mutual_information = mutual_information  # I(x; z) in nats at a step
        self.folder, self.is_main, self.total_steps = folder, is_main, total_steps

    def __call__(self, batch: dict, step: int):
        batch = to_device(batch, self.device)
        record = self.aggressive.check(step, self.position(step) / self.total_steps,
                                       lambda: self.mutual_information(step))
        if record and self.is_main:
            self.folder.log_plain({"step": step, "split": "aggressive", **record})
            if not record["aggressive"]:
                print(f"vaekit: aggressive inference ended at step {step}: I(x; z) {record['mi']:.3f} nats, "
                      f"not above {record['previous_mi']:.3f} at the check before", file=sys.stderr)
        if not self.aggressive.on:
            return self.update(batch, step)
        encoder_steps = self.train_encoder(batch, step)
        terms = self.update(batch, step, frozen=self.aggressive.encoder_params)
        terms.extra["encoder_steps"] = encoder_steps
        return terms

    def train_encoder(self, batch: dict, step: int) -> int:
        """The inner loop: encoder-only updates on this batch, then on random ones. The objective's state (a KL
        controller's) is put back afterwards: it follows the training steps only."""
        saved = getattr(self.objective, "state_dict", dict)()
        stride = self.cfg.aggressive_max_steps + 1

        def random_batch(i: int) -> dict:
            seed = (self.seed * 1_000_003 + step) * stride + i  # the same draws after --resume
            indices = random_indices(len(self.data.train), self.cfg.batch_size, seed)
            items = [self.data.train[j] for j in indices.tolist()]
            return to_device((self.data.collate or default_collate)(items), self.device)

        steps = self.aggressive.train_encoder(
            lambda b: self.update(b, step, frozen=self.aggressive.decoder_params, schedule=False).loss.item(),
            batch, random_batch)
        if saved:
            self.objective.load_state_dict(saved)
        return steps
