"""Disentanglement for data sets with known generating factors: MIG (Chen et al. 2018) and SAP (Kumar et al. 2018).

A plugin's dataset that knows its factors exposes `factors(index) -> {name: level}` (integer levels), as the
image plugin's shapes do; `vaekit eval` then reports mig and sap, and the engine does the rest:

    scores = disentanglement(model, dataset)     # {"mig": ..., "sap": ..., "mig_per_factor": {...}}

Both compare each factor's best latent unit with its second best, so 1 means one unit per factor and 0 a
factor spread over units (or not captured). Units are the posterior means, flattened.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Subset

from .samplers import encode_means


def _discrete_mutual_information(a: Tensor, b: Tensor) -> Tensor:
    """I(a; b) in nats between two integer label vectors [N]."""
    a = torch.unique(a, return_inverse=True)[1]
    b = torch.unique(b, return_inverse=True)[1]
    joint = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    joint.index_put_((a, b), torch.ones(a.shape[0], dtype=torch.float64), accumulate=True)
    joint /= a.shape[0]
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    nonzero = joint > 0
    return (joint[nonzero] * (joint[nonzero] / outer[nonzero]).log()).sum()


def _entropy(labels: Tensor) -> Tensor:
    p = torch.unique(labels, return_counts=True)[1].double() / labels.shape[0]
    return -(p * p.log()).sum()


def mig(codes: Tensor, factors: Tensor, bins: int = 20) -> tuple[float, list[float]]:
    """Mutual information gap: mean over factors of (I(z_top; v) - I(z_second; v)) / H(v), codes [N, U], factors [N, F].

    Each unit is discretised into `bins` equal-width bins (as disentanglement_lib does); factors with one level
    are skipped. Returns the mean and the per-factor gaps.
    """
    codes = codes.double()
    low, high = codes.min(0).values, codes.max(0).values
    binned = ((codes - low) / (high - low).clamp(min=1e-12) * bins).long().clamp(max=bins - 1)
    gaps = []
    for k in range(factors.shape[1]):
        entropy = _entropy(factors[:, k])
        if entropy <= 0:
            continue
        mi = torch.stack([_discrete_mutual_information(binned[:, j], factors[:, k]) for j in range(codes.shape[1])])
        top = mi.topk(min(2, mi.shape[0])).values
        second = top[1] if top.shape[0] > 1 else torch.zeros((), dtype=top.dtype)
        gaps.append(float((top[0] - second) / entropy))
    return (sum(gaps) / len(gaps) if gaps else 0.0), gaps


def sap(codes: Tensor, factors: Tensor) -> tuple[float, list[float]]:
    """Separated attribute predictability: mean over factors of the gap between the two best units' R^2.

    R^2 of the least-squares line predicting the factor's level from one unit (Kumar et al.'s score for
    ordered factors), computed on all rows given.
    """
    codes, factors = codes.double(), factors.double()
    zc = codes - codes.mean(0)
    fc = factors - factors.mean(0)
    cov = zc.T @ fc  # [U, F]
    r2 = cov**2 / ((zc**2).sum(0).unsqueeze(1) * (fc**2).sum(0).unsqueeze(0)).clamp(min=1e-12)
    gaps = []
    for k in range(factors.shape[1]):
        if fc[:, k].abs().sum() == 0:
            continue
        top = r2[:, k].topk(min(2, r2.shape[0])).values
        gaps.append(float(top[0] - (top[1] if top.shape[0] > 1 else 0.0)))
    return (sum(gaps) / len(gaps) if gaps else 0.0), gaps


def factor_source(dataset):
    """(dataset that knows its factors, index map) through any torch Subset wrappers; (None, None) if none does."""
    indices = None
    while isinstance(dataset, Subset):
        inner = list(dataset.indices)
        indices = inner if indices is None else [inner[i] for i in indices]
        dataset = dataset.dataset
    return (dataset, indices) if callable(getattr(dataset, "factors", None)) else (None, None)


@torch.no_grad()
def disentanglement(model, dataset, collate=None, batch_size: int = 256, max_examples: int = 10_000) -> dict:
    """mig, sap and per-factor scores of a model's posterior means on a dataset with factors; {} without factors."""
    source, indices = factor_source(dataset)
    if source is None:
        return {}
    n = min(len(dataset), max_examples)
    codes = encode_means(model, dataset, collate, batch_size, max_examples=n)
    rows = [source.factors(indices[i] if indices is not None else i) for i in range(n)]
    names = list(rows[0])
    factors = torch.tensor([[row[name] for name in names] for row in rows])
    mig_score, mig_gaps = mig(codes, factors)
    sap_score, sap_gaps = sap(codes, factors)
    varying = [name for k, name in enumerate(names) if factors[:, k].unique().numel() > 1]
    return {"mig": mig_score, "sap": sap_score, "mig_per_factor": dict(zip(varying, mig_gaps, strict=True)),
            "sap_per_factor": dict(zip(varying, sap_gaps, strict=True))}
