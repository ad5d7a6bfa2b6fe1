"""KL weight schedules: the β applied to the KL term at each optimisation step.

    schedule = KLSchedule.cyclical(total_steps=10_000, n_cycles=4, ratio=0.5, end=1.0)
    beta = schedule(step)

- constant: β = end at every step.
- linear: β rises linearly from start to end over warmup_steps, then stays at end.
- sigmoid: β = start + (end - start) * sigmoid(steepness * (step / warmup_steps - 0.5)), a smooth
  warm-up centred on warmup_steps / 2 (Bowman et al. 2016 use a logistic schedule).
- cyclical: total_steps split into n_cycles; in each cycle β rises linearly from start to end over
  the first `ratio` of the cycle and stays at end for the rest (Fu et al. 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class KLSchedule:
    """β as a function of the step; see the module docstring for each kind."""

    kind: Literal["constant", "linear", "sigmoid", "cyclical"] = "constant"
    start: float = 0.0
    end: float = 1.0
    warmup_steps: int = 0
    total_steps: int = 0
    n_cycles: int = 4
    ratio: float = 0.5
    steepness: float = 10.0

    def __post_init__(self):
        if self.kind not in ("constant", "linear", "sigmoid", "cyclical"):
            raise ValueError(f"unknown KL schedule kind {self.kind!r}")
        if self.kind == "cyclical" and (self.total_steps <= 0 or self.n_cycles <= 0):
            raise ValueError("a cyclical KL schedule needs total_steps > 0 and n_cycles > 0")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must lie in (0, 1], got {self.ratio}")

    @classmethod
    def constant(cls, value: float = 1.0) -> KLSchedule:
        return cls("constant", end=value)

    @classmethod
    def linear(cls, warmup_steps: int, start: float = 0.0, end: float = 1.0) -> KLSchedule:
        return cls("linear", start=start, end=end, warmup_steps=warmup_steps)

    @classmethod
    def sigmoid(cls, warmup_steps: int, start: float = 0.0, end: float = 1.0, steepness: float = 10.0):
        return cls("sigmoid", start=start, end=end, warmup_steps=warmup_steps, steepness=steepness)

    @classmethod
    def cyclical(cls, total_steps: int, n_cycles: int = 4, ratio: float = 0.5, start: float = 0.0,
                 end: float = 1.0) -> KLSchedule:
        return cls("cyclical", start=start, end=end, total_steps=total_steps, n_cycles=n_cycles, ratio=ratio)

    def __call__(self, step: int) -> float:
        """β at this (0-based) optimisation step."""
        if self.kind == "constant":
            return self.end
        if self.kind == "linear":
            progress = 1.0 if self.warmup_steps <= 0 else min(step / self.warmup_steps, 1.0)
        elif self.kind == "sigmoid":
            if self.warmup_steps <= 0:
                return self.end
            progress = 1.0 / (1.0 + math.exp(-self.steepness * (step / self.warmup_steps - 0.5)))
        else:
            cycle_length = self.total_steps / self.n_cycles
            position = (step % cycle_length) / cycle_length
            progress = min(position / self.ratio, 1.0)
        return self.start + (self.end - self.start) * progress
