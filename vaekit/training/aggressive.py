"""Aggressive inference-network updates (He et al. 2019, "Lagging Inference Networks and Posterior Collapse").

While the phase lasts, each training step first updates only the encoder, on the step's batch and then on random
training batches, until its loss stops falling (compared over blocks of 15 updates, at most
trainer.aggressive_max_steps updates); then the decoder alone takes the step's update. The encoder so keeps up with
the decoder's current p(x|z); a lagging encoder is what lets the decoder learn to ignore z. The phase ends at the
first check where the mutual information I(x; z) on validation batches has not risen since the check before; from
then on training is plain. He et al. check once an epoch; vaekit also checks every 20th of the run (of its time
under trainer.max_minutes), so that the phase can end inside a short or capped run.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 15  # encoder updates whose summed loss is compared with the block before (He et al.'s code)


class AggressiveInference:
    """The phase's state and its two parts: the encoder's inner loop and the mutual-information check."""

    def __init__(self, model: torch.nn.Module, max_steps: int, check_every: int, check_fraction: float | None):
        self.encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
        encoder_ids = {id(p) for p in self.encoder_params}
        self.decoder_params = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
        self.max_steps, self.check_every, self.check_fraction = max_steps, check_every, check_fraction
        self.on, self.last_mi = True, None
        self.next_step, self.next_fraction = check_every, check_fraction or float("inf")

    def state_dict(self) -> dict:
        return {"on": self.on, "last_mi": self.last_mi, "next_step": self.next_step,
                "next_fraction": None if self.next_fraction == float("inf") else self.next_fraction}

    def load_state_dict(self, state: dict) -> None:
        self.on, self.last_mi, self.next_step = bool(state["on"]), state["last_mi"], int(state["next_step"])
        self.next_fraction = float("inf") if state["next_fraction"] is None else float(state["next_fraction"])

    def train_encoder(self, update, first_batch, random_batch) -> int:
        """Encoder-only updates from first_batch, then random_batch(i), until the loss stops falling; returns
        how many were made. update(batch) makes one encoder-only step and returns its loss (nats per example)."""
        previous, current, batch = float("inf"), 0.0, first_batch
        for i in range(1, self.max_steps + 1):
            current += update(batch)
            if i % BLOCK == 0:
                if current > previous:
                    return i
                previous, current = current, 0.0
            if i < self.max_steps:
                batch = random_batch(i)
        return self.max_steps

    def check(self, step: int, fraction: float, mutual_info) -> dict | None:
        """At a check (every check_every steps, or check_fraction of the run, whichever comes first), measure
        I(x; z) with mutual_info() and end the phase once it stops rising; returns what to log, else None."""
        if not self.on or (step < self.next_step and fraction < self.next_fraction):
            return None
        self.next_step = step + self.check_every
        if self.check_fraction:
            self.next_fraction = fraction + self.check_fraction
        mi = mutual_info()
        record = {"mi": mi, "previous_mi": self.last_mi}
        if self.last_mi is not None and mi <= self.last_mi:
            self.on = False
        self.last_mi = mi
        return {**record, "aggressive": self.on}


def random_indices(count: int, size: int, seed: int) -> Tensor:
    """size training indices drawn with a generator of their own, so that a resumed run draws the same ones."""
    return torch.randint(count, (size,), generator=torch.Generator().manual_seed(seed))
