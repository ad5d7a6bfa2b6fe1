"""Classifier-based sample quality: a small classifier trained once per data set, then accuracy,
Fréchet distance and precision/recall between real and generated examples in its features.

Plugins supply the classifier (an nn.Module with `features(*inputs) -> [B, F]`, `head(features)
-> logits` and `forward = head(features(...))`) and the batches; this module trains it, caches it under a key
made of everything it was trained on, and computes the metrics:

    settings = {"plugin": "image", "data": data_section, "examples": 10000, "epochs": 2}
    clf = cached_classifier(lambda: SmallClassifier(...), lambda c: fit_classifier(c, batches, 2), settings, run_dir)
    frechet_distance(real_features, fake_features)       # squared distance of fitted Gaussians
    precision_recall(real_features, fake_features, k=3)   # Kynkäänniemi et al. 2019
    report_classifier("image classifier", real=0.61, scores={"samples": 0.55}, examples=400)  # lines on stderr

A classifier's score on generated data means little unless the classifier is right on real data:
report_classifier prints its accuracy on real data beside every score it gave, and warns when it is under
WEAK_ACCURACY there, or when a score exceeds it (a relative score above 1: the classifier favours something the
generated examples have and real ones lack, such as a decoder's smoothness).
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..io.safe_writes import atomic_write_bytes, atomic_write_text


def cache_key(settings: dict) -> str:
    """A short hash of the JSON settings a classifier was trained on (any change gives a new key)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_classifier(make: Callable[[], nn.Module], fit: Callable[[nn.Module], object], settings: dict,
                      cache_dir: str | Path | None, name: str = "classifier") -> nn.Module:
    """make() loaded from cache_dir/NAME-KEY.safetensors, or trained by fit(module) and saved there.

    KEY = cache_key(settings): a classifier is reused only for exactly the settings it was trained
    on (data, examples, epochs, ...); NAME-KEY.json beside the weights records those settings.
    """
    from safetensors.torch import load_file, save

    classifier = make()
    path = Path(cache_dir) / f"{name}-{cache_key(settings)}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            classifier.load_state_dict(load_file(str(path)))
            return classifier.eval()
        except (RuntimeError, OSError, ValueError) as exc:  # damaged cache: retrain over it
            warnings.warn(f"{path}: ignoring cached classifier ({exc})", stacklevel=2)
    fit(classifier)
    classifier.eval()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}))
        atomic_write_text(path.with_suffix(".json"), json.dumps(settings, sort_keys=True, indent=1, default=str) + "\n")
    return classifier


def _call(module: Callable, inputs) -> Tensor:
    return module(*inputs) if isinstance(inputs, (tuple, list)) else module(inputs)


def fit_classifier(classifier: nn.Module, batches: Callable[[], Iterable[tuple[object, Tensor]]], epochs: int = 2,
                   lr: float = 2e-3) -> nn.Module:
    """Train with cross-entropy and Adam; batches() yields (inputs, labels) once per epoch (inputs: tensor or tuple)."""
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    classifier.train()
    for _ in range(epochs):
        for inputs, labels in batches():
            loss = F.cross_entropy(_call(classifier, inputs), labels.long().reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return classifier.eval()


@torch.no_grad()
def predict(classifier: nn.Module, inputs: Iterable) -> tuple[Tensor, Tensor]:
    """(predicted labels [N], features [N, F]) over batches of inputs; uses classifier.features and .head."""
    labels, features = [], []
    for batch in inputs:
        h = _call(classifier.features, batch)
        labels.append(classifier.head(h).argmax(-1).cpu())
        features.append(h.float().cpu())
    return torch.cat(labels), torch.cat(features)


@torch.no_grad()
def accuracy(classifier: nn.Module, batches: Iterable[tuple[object, Tensor]]) -> float:
    """Share of (inputs, labels) batches classified correctly (a fraction in [0, 1])."""
    correct = total = 0
    for inputs, labels in batches:
        correct += (_call(classifier, inputs).argmax(-1).cpu() == labels.reshape(-1).cpu()).sum().item()
        total += labels.numel()
    return correct / max(total, 1)


WEAK_ACCURACY = 0.8  # below this share right on real data, a classifier's scores of generated data say little


def relative_scores(real: float, scores: dict[str, float]) -> dict[str, float]:
    """Each score divided by the classifier's accuracy on real data (1: as good as real examples; empty if 0)."""
    return {name: value / real for name, value in scores.items()} if real > 0 else {}


def report_classifier(name: str, real: float, scores: dict[str, float], *, examples: int | None = None,
                      remedy: str = "", weak_below: float = WEAK_ACCURACY, file=None) -> list[str]:
    """Print (to stderr) and return one line with the classifier's accuracy on real data beside each of its scores
    (fractions), plus a one-line warning when it is too weak to judge: under weak_below on real data, or a score
    above that accuracy. remedy: how to get a stronger classifier (e.g. a flag), said in the warning."""
    on = f"{examples:,} real examples" if examples else "real examples"
    relative = relative_scores(real, scores)
    shown = ", ".join(f"{key} {value:.1%}" + (f" ({relative[key]:.2f} of real)" if key in relative else "")
                      for key, value in scores.items())
    lines = [f"vaekit: note: {name}: {real:.1%} right on {on}" + (f"; its scores: {shown}" if shown else "")]
    hint = f"; {remedy}" if remedy else ""
    if real < weak_below:
        lines.append(f"vaekit: warning: {name}: only {real:.1%} right on {on} (under {weak_below:.0%}), too weak "
                     f"to judge: {', '.join(scores) or 'its scores'} say little about the model{hint}")
    above = [key for key, value in relative.items() if value > 1]
    if above:
        lines.append(f"vaekit: warning: {name}: {', '.join(f'{key} {relative[key]:.2f}' for key in above)} times "
                     f"its accuracy on {on}: it favours something generated examples have and real ones lack, so "
                     f"{'that score is' if len(above) == 1 else 'those scores are'} no evidence of quality{hint}")
    for line in lines:
        print(line, file=file or sys.stderr, flush=True)
    return lines


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance_from_stats(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the squared Fréchet (W2) distance of two Gaussians."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    root1 = _sqrt_psd(sigma1)
    # Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), a symmetric PSD matrix: no complex sqrtm needed.
    cross = torch.linalg.eigvalsh(root1 @ sigma2 @ root1).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * cross)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance (FID-style, in the classifier's feature units squared) between two feature sets [N, F]."""
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("frechet_distance: need at least 2 examples on each side")
    stats = [(f.double().mean(0), torch.cov(f.double().T).reshape(f.shape[1], f.shape[1])) for f in (real, fake)]
    return frechet_distance_from_stats(*stats[0], *stats[1])


def _knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance from each point to its k-th nearest other point of the same set."""
    distances = torch.cdist(features, features)
    return distances.kthvalue(k + 1, dim=1).values  # k + 1: the point itself is at distance 0


def _coverage(reference: Tensor, radii: Tensor, queries: Tensor, chunk: int = 1024) -> float:
    """Share of queries inside at least one reference point's k-NN ball."""
    inside = [(torch.cdist(q, reference) <= radii[None]).any(1) for q in queries.split(chunk)]
    return torch.cat(inside).float().mean().item()


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of fake against real features [N, F].

    precision: share of fake points inside the real manifold (union of real k-NN balls);
    recall: share of real points inside the fake manifold.
    """
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"precision_recall: need more than k = {k} examples on each side")
    real, fake = real.float(), fake.float()
    return _coverage(real, _knn_radii(real, k), fake), _coverage(fake, _knn_radii(fake, k), real)
