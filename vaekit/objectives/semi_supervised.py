"""The M2 objective of Kingma et al. 2014 ("Semi-supervised learning with deep generative models"), in nats.

A batch mixes labelled and unlabelled examples; c holds each example's class, -1 where it has no label.

    labelled:    L(x, y) = E_q(z|x,y)[log p(x|z, y)] - KL(q(z|x, y) || p(z)) + log p(y)    (p(y) uniform)
                 loss term -L(x, y) + alpha * (-log q(y|x))
    unlabelled:  U(x) = sum_y q(y|x) L(x, y) + H(q(y|x))        (y marginalised exactly over the K classes)
                 loss term -U(x)

The model is a vaekit.model.semi_supervised.M2Model (any object with the same methods): `features(x)` read once
per batch, `class_logits(features)`, `posterior_from(features, y)`, `log_likelihood(x, z, y)` and `prior(...)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.batch import index, tile
from .elbo import Objective, ObjectiveTerms, elbo
from .sampling import prior_for


def labelled_terms(model, x, features: Tensor, y: Tensor) -> ObjectiveTerms:
    """L(x, y) per example with y observed: elbo, log_likelihood and kl [B] nats (elbo includes log p(y))."""
    posterior = model.posterior_from(features, y)
    z, log_qz = posterior.rsample_and_log_prob()
    log_px_z = model.log_likelihood(x, z, y)
    terms = elbo(log_px_z, posterior, prior_for(model, y, y.shape[0], posterior), z=z, log_qz=log_qz)
    terms.elbo = terms.elbo - math.log(model.num_classes)
    return terms


def class_bounds(model, x, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """L(x, y) for every class y at once: (elbo, log_likelihood, kl), each [K, B] nats."""
    k, n = model.num_classes, features.shape[0]
    classes = torch.arange(k, device=features.device).repeat_interleave(n)  # class-major: [K * B]
    terms = labelled_terms(model, tile(x, k), tile(features, k), classes)
    return terms.elbo.reshape(k, n), terms.log_likelihood.reshape(k, n), terms.kl.reshape(k, n)


def unlabelled_bound(model, x, features: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)) [B] nats, and the expected log-likelihood and KL under q(y|x)."""
    features = model.features(x) if features is None else features
    log_q = F.log_softmax(model.class_logits(features), dim=-1)  # [B, K]
    q = log_q.exp()
    bounds, log_likelihood, kl = class_bounds(model, x, features)
    entropy = -(q * log_q).sum(-1)
    expected = lambda values: (q * values.transpose(0, 1)).sum(-1)
    return expected(bounds) + entropy, expected(log_likelihood), expected(kl)


class M2(Objective):
    """Kingma et al.'s M2: labelled examples (c >= 0) by L(x, y) plus alpha times the classification loss,
    unlabelled ones (c = -1) by U(x); the loss is their sum over the batch divided by its size."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def __call__(self, model, x, c=None, step=0):
        if c is None:
            raise ValueError("the M2 objective needs each example's class in c (-1 for an unlabelled example)")
        c = c.long().reshape(-1)
        features = model.features(x)
        logits = model.class_logits(features)
        labelled = c >= 0
        n = c.shape[0]
        elbo_all = features.new_zeros(n)
        log_likelihood, kl = features.new_zeros(n), features.new_zeros(n)
        loss = features.new_zeros(())
        extra = {"labelled": float(labelled.sum())}
        if labelled.any():
            where = labelled.nonzero().squeeze(1)
            terms = labelled_terms(model, index(x, where), features[where], c[where])
            cross_entropy = F.cross_entropy(logits[where], c[where], reduction="none")
            loss = loss + (-terms.elbo + self.alpha * cross_entropy).sum()
            elbo_all[where], log_likelihood[where], kl[where] = terms.elbo, terms.log_likelihood, terms.kl
            extra["class_loss"] = cross_entropy.mean().item()
            extra["labelled_error"] = 100.0 * (logits[where].argmax(-1) != c[where]).float().mean().item()
        if not labelled.all():
            where = (~labelled).nonzero().squeeze(1)
            bound, expected_ll, expected_kl = unlabelled_bound(model, index(x, where), features[where])
            loss = loss - bound.sum()
            elbo_all[where], log_likelihood[where], kl[where] = bound, expected_ll, expected_kl
        return ObjectiveTerms(loss / n, elbo_all, log_likelihood, kl, kl.new_zeros(0), 1.0, extra)
