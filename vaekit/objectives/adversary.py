"""A condition adversary: keeps the label a CVAE is conditioned on out of its latent (Ganin et al. 2016).

    latent:
      condition_adversary: 1.0   # weight of the adversary's cross-entropy (nats per example) in the loss

A small network predicts every label condition (a speaker, a digit, a class) from each latent position: the
vector z, every step of a sequence latent [B, T, D] (padding left out), every pixel of a spatial one [B, C, H, W].
Its cross-entropy is summed over positions, as the KL is: nats per example, so one weight suits any length.
It learns to predict them; the encoder gets the reversed gradient, so it learns codes the adversary cannot read.
What the decoder needs about the label must then come from the condition, and swapping the condition at decode
time (voice conversion, class transfer) changes the label without the code pulling back towards the old one.
Training only: evaluation, likelihoods and sampling never see it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient's sign flipped backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


class ConditionAdversary(nn.Module):
    """Predicts each label column of c from every latent position, through a reversed gradient."""

    def __init__(self, latent_shape: tuple, num_classes: list[int], weight: float, hidden: int = 128):
        super().__init__()
        self.spatial = len(latent_shape) == 3  # [C, H, W]: channels are the units at each pixel
        units = latent_shape[0] if self.spatial else latent_shape[-1]
        self.num_classes, self.weight = list(num_classes), float(weight)
        self.net = nn.Sequential(nn.Linear(units, hidden), nn.SiLU(), nn.Linear(hidden, sum(self.num_classes)))

    def forward(self, z: Tensor, c: Tensor, mask: Tensor | None = None) -> Tensor:
        """Cross-entropy [B] nats, summed over the valid latent positions and the label columns."""
        z = _ReverseGradient.apply(z)
        if self.spatial:
            z = z.flatten(2).transpose(1, 2)  # [B, H*W, C]
        elif z.dim() == 2:
            z = z[:, None]  # one position
        logits = self.net(z)  # [B, P, sum of classes]
        labels = c.long().reshape(z.shape[0], -1)
        valid = mask.to(z.dtype) if mask is not None and mask.shape == z.shape[:2] else z.new_ones(z.shape[:2])
        total = z.new_zeros(z.shape[0])
        for column, scores in enumerate(logits.split(self.num_classes, -1)):
            target = labels[:, column, None].expand(-1, z.shape[1])
            nats = F.cross_entropy(scores.transpose(1, 2), target, reduction="none")  # [B, P]
            total = total + (nats * valid).sum(1)
        return total


def add_adversary_loss(terms, model, z: Tensor, c: Tensor | None, posterior):
    """terms with weight x the adversary's mean cross-entropy added to the loss while training; its nats logged."""
    adversary = getattr(model, "condition_adversary", None)
    if adversary is None or c is None or not torch.is_grad_enabled():
        return terms
    nats = adversary(z, c, getattr(posterior, "mask", None))
    terms.loss = terms.loss + adversary.weight * nats.mean()
    terms.extra["adversary_ce"] = nats.mean().item()  # nats per example: chance is positions x log K
    return terms
