"""A condition cycle: train the path a CVAE's conversions take (CycleVAE, Tobing et al. 2019).

    latent:
      condition_cycle: 1.0   # weight of the cycle's reconstruction (nats per example) in the loss

A CVAE's ELBO only ever decodes a code with the condition it was encoded with, yet voice conversion and class
transfer decode it with another. The cycle trains that path: each example's code z is decoded with a random
other label c' (every label column shifted to another class) to x' = the likelihood's mean, x' is encoded again
under c', and a code drawn from q(z|x', c') must reconstruct the original x under its own c:

    cycle nats = -log p(x | z'', c),   z'' ~ q(z | x', c'),   x' = E[x | z, c']

Gradients flow through x' into the first decode, so the decoder learns conversions whose content the encoder
can read back. It needs a decoder method `differentiable_mean(x, z, c)` returning x' shaped like x. Each
training step then adds two decodes and an encode. Training only: likelihoods and sampling never see it.
No recipe uses it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConditionCycle(nn.Module):
    """No parameters: the weight and each label column's class count, kept with the model."""

    def __init__(self, num_classes: list[int], weight: float):
        super().__init__()
        self.num_classes, self.weight = list(num_classes), float(weight)

    def other_labels(self, c: Tensor) -> Tensor:
        """c with every label column moved to a uniformly drawn different class."""
        labels = c.long().reshape(c.shape[0], -1)
        shifts = torch.stack([torch.randint(1, n, (c.shape[0],), device=c.device) for n in self.num_classes], 1)
        classes = torch.tensor(self.num_classes, device=c.device)
        return ((labels + shifts) % classes).reshape(c.shape).to(c.dtype)

    def forward(self, model, x, z: Tensor, c: Tensor) -> Tensor:
        """The cycle's reconstruction [B] in nats: -log p(x | z'' ~ q(z | E[x | z, c'], c'), c)."""
        other = self.other_labels(c)
        converted = model.decoder.differentiable_mean(x, z, other)
        z_back = model.posterior(converted, other).rsample()
        return -model.log_likelihood(x, z_back, c)


def check_cycle_decoder(model) -> None:
    """A one-line ValueError when the decoder cannot give a differentiable mean for the cycle."""
    if not callable(getattr(model.decoder, "differentiable_mean", None)):
        raise ValueError(f"latent.condition_cycle: the decoder ({type(model.decoder).__name__}) has no "
                         f"differentiable_mean(x, z, c) to decode a conversion through (discrete data such as "
                         f"text has none); use latent.condition_adversary instead")


def add_cycle_loss(terms, model, x, z: Tensor, c: Tensor | None):
    """terms with weight x the cycle's mean nats added to the loss while training; its nats logged."""
    cycle = getattr(model, "condition_cycle", None)
    if cycle is None or c is None or not torch.is_grad_enabled():
        return terms
    nats = cycle(model, x, z, c)
    terms.loss = terms.loss + cycle.weight * nats.mean()
    terms.extra["cycle_rec"] = nats.mean().item()  # nats per example, comparable with the batch's rec
    return terms
