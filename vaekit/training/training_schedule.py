"""The run's schedules: its length, the learning rate (linear warm-up, then cosine decay) and the objective's KL
weight, with warm-ups given in steps or as fractions of the run, and a note when a run ends inside a warm-up.

The learning rate is torch's LambdaLR over lr_factor, not SequentialLR(LinearLR, CosineAnnealingLR): those step by
their own call count (step() takes no position), so they cannot follow a time budget's position (max_minutes)."""

from __future__ import annotations

import math

import torch

from ..config.recipe import Recipe
from ..objectives.elbo import ELBO, IWAE, Autoencoder, BetaTCVAE, InfoVAE, Objective
from ..objectives.kl_control import ControlledELBO, KLController
from ..objectives.schedules import KLSchedule
from ..objectives.semi_supervised import M2
from .training_errors import TrainingError


def warmup_length(steps: int, fraction: float | None, total_steps: int, key: str) -> int:
    """A warm-up in steps: `steps` when > 0, else `fraction` of the run's total_steps (at least 1), else 0."""
    if fraction is not None and not 0.0 <= fraction <= 1.0:
        raise TrainingError(f"{key}_fraction: expected a fraction of the run between 0 and 1, got {fraction}")
    if steps > 0 or not fraction:  # an explicit step count (a CLI override, say) wins over the recipe's fraction
        return max(0, steps)
    return max(1, round(fraction * total_steps))


def make_objective(recipe: Recipe, total_steps: int, dataset_size: int = 1) -> Objective:
    """The recipe's objective with its KL schedule (cyclical spans the whole run; fractions are of the run).

    β-TCVAE needs the training set's size (its minibatch-weighted sampling).
    """
    cfg = recipe.objective
    if cfg.kind == "iwae":
        return IWAE(cfg.iw_samples)
    if cfg.kind == "ae":
        return Autoencoder()
    if cfg.kind == "m2":
        return M2(cfg.alpha)
    if cfg.kind == "infovae":
        return InfoVAE(cfg.info_alpha, cfg.info_lambda)
    if cfg.kl_target is not None:  # a KL set-point replaces the schedule
        k = cfg.kl_control
        return ControlledELBO(KLController(cfg.kl_target, k.kp, k.ki, k.beta_min, cfg.beta), cfg.free_bits)
    s = cfg.kl_schedule
    warmup = warmup_length(s.warmup_steps, s.warmup_fraction, total_steps, "objective.kl_schedule.warmup")
    schedule = KLSchedule(s.kind, start=s.start, end=cfg.beta, warmup_steps=warmup,
                          total_steps=total_steps, n_cycles=s.n_cycles, ratio=s.ratio, steepness=s.steepness)
    if cfg.kind == "tcvae":
        return BetaTCVAE(schedule, dataset_size, free_bits=cfg.free_bits)
    return ELBO(schedule, free_bits=cfg.free_bits)


def lr_factor(step: int, warmup: int, total: int, kind: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine down to min_ratio."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scheduler(optimizer, cfg, warmup: int, total_steps: int, position) -> torch.optim.lr_scheduler.LambdaLR:
    """trainer.lr_schedule over the run; position(step) says how far the run is, in steps (see TrainingClock)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(position(s), warmup, total_steps, cfg.lr_schedule, cfg.min_lr_ratio))


def set_base_lr(optimizer, scheduler, lr: float) -> None:
    """A resumed run with another trainer.lr: the new rate, at the schedule's position."""
    if scheduler.base_lrs[0] == lr:
        return
    scheduler.base_lrs = [lr for _ in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["initial_lr"] = lr
        group["lr"] = lr * scheduler.lr_lambdas[0](scheduler.last_epoch)


def run_length(cfg, steps_per_epoch: int) -> str:
    """What sets the run's length, in words: the recipe's epochs, trainer.min_steps or trainer.max_steps."""
    by_epochs = cfg.epochs * steps_per_epoch
    if cfg.max_steps and cfg.max_steps < max(by_epochs, cfg.min_steps):
        return f"trainer.max_steps is {cfg.max_steps}"
    length = f"trainer.epochs={cfg.epochs} of {steps_per_epoch} steps end at step {by_epochs}"
    if cfg.min_steps > by_epochs:
        length = (f"trainer.min_steps={cfg.min_steps} outlasts trainer.epochs={cfg.epochs} of "
                  f"{steps_per_epoch} steps")
    return length + (f", before trainer.max_steps={cfg.max_steps}" if cfg.max_steps else "")


def min_steps_note(cfg, examples: int, steps_per_epoch: int, total_steps: int) -> str | None:
    """A sentence when trainer.min_steps, not trainer.epochs, sets the run's length (a small data set)."""
    if min(total_steps, cfg.min_steps) <= cfg.epochs * steps_per_epoch:
        return None
    return (f"{examples} training examples make {steps_per_epoch} steps per epoch; trainer.min_steps={cfg.min_steps} "
            f"trains {total_steps} steps ({total_steps / steps_per_epoch:.1f} epochs), not trainer.epochs={cfg.epochs}"
            + (f" (trainer.max_steps={cfg.max_steps} caps it)" if total_steps < cfg.min_steps else ""))


def warmup_note(position: float, lr_warmup: int, objective) -> str | None:
    """A sentence when the run ended (at position, in steps) inside its LR or KL warm-up, so its numbers are not
    the schedule's."""
    notes = []
    if lr_warmup and position < lr_warmup:
        notes.append(f"the learning-rate warm-up ({position:.0f} of {lr_warmup} steps)")
    schedule = getattr(objective, "schedule", None)
    in_kl_warmup = isinstance(schedule, KLSchedule) and schedule.kind in ("linear", "sigmoid") \
        and position < schedule.warmup_steps and schedule(position) < schedule.end
    if in_kl_warmup:
        notes.append(f"the KL warm-up (beta {schedule(position):.3g} of {schedule.end:g})")
    if not notes:
        return None
    return (f"the run ended inside {' and '.join(notes)}; its results are not those of the full schedule: "
            f"give warm-ups as fractions of the run (trainer.warmup_fraction, "
            f"objective.kl_schedule.warmup_fraction) or train longer")
