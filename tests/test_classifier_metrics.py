"""vaekit.classifier_metrics: Fréchet distance and precision/recall against known answers; the keyed cache."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vaekit.evaluation.classifier_metrics import (
    accuracy,
    cache_key,
    cached_classifier,
    fit_classifier,
    frechet_distance,
    frechet_distance_from_stats,
    precision_recall,
    predict,
    relative_scores,
    report_classifier,
)


def test_frechet_of_diagonal_gaussians_is_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + sum(a + b - 2 * math.sqrt(a * b) for a, b in zip(v1.tolist(), v2.tolist(), strict=True))
    assert frechet_distance_from_stats(mu1, torch.diag(v1), mu2, torch.diag(v2)) == pytest.approx(expected, abs=1e-9)


def test_frechet_of_rotated_covariances():
    # Two full covariances with the same eigenvalues: Tr((S1 S2)^(1/2)) known through commuting matrices.
    rotation = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    sigma = rotation @ torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)) @ rotation.T
    zero = torch.zeros(4, dtype=torch.float64)
    assert frechet_distance_from_stats(zero, sigma, zero, sigma) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance_from_stats(zero, sigma, zero, 4 * sigma) == pytest.approx(10.0, abs=1e-9)  # (2-1)^2 * 10


def test_frechet_from_samples_approaches_the_truth():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([3.0, 0.0, 0.0])
    assert frechet_distance(real, fake) == pytest.approx(9 + 3 * (1 + 4 - 4), rel=0.03)  # 12
    assert frechet_distance(real[:10000], real[10000:]) < 0.01


def test_precision_recall_known_answers():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(400, 2, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    # Fakes that cover only the right half of the real set: all precise, about half the recall.
    half = real[real[:, 0] > 0]
    precision, recall = precision_recall(real, half)
    assert precision == 1.0 and 0.3 < recall < 0.7


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(2, 8), nn.Linear(8, 2)

    def features(self, x):
        return torch.relu(self.body(x))

    def forward(self, x):
        return self.head(self.features(x))


def two_blobs(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    return torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * 2.0, y


def test_cache_is_keyed_by_settings(tmp_path):
    x, y = two_blobs()
    fits = []

    def fit(classifier):
        fits.append(1)
        torch.manual_seed(0)
        fit_classifier(classifier, lambda: zip(x.split(32), y.split(32), strict=True), epochs=5, lr=1e-2)

    first = cached_classifier(Tiny, fit, {"data": "blobs", "examples": 256}, tmp_path)
    again = cached_classifier(Tiny, fit, {"examples": 256, "data": "blobs"}, tmp_path)  # same settings, any order
    assert len(fits) == 1
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(),
                                                 strict=True))
    cached_classifier(Tiny, fit, {"data": "blobs", "examples": 128}, tmp_path)  # changed settings: retrained
    assert len(fits) == 2 and len(list(tmp_path.glob("classifier-*.safetensors"))) == 2
    assert cache_key({"a": 1}) != cache_key({"a": 2})
    assert accuracy(first, [(x, y)]) > 0.95
    labels, features = predict(first, [x[:10], x[10:20]])
    assert labels.shape == (20,) and features.shape == (20, 8)


def test_a_classifiers_real_accuracy_stands_beside_its_scores_with_a_warning_when_too_weak(capsys):
    lines = report_classifier("image classifier", 0.9, {"samples": 0.72, "transfer": 0.45}, examples=2000)
    assert lines == ["vaekit: note: image classifier: 90.0% right on 2,000 real examples; its scores: samples 72.0% "
                     "(0.80 of real), transfer 45.0% (0.50 of real)"]
    assert capsys.readouterr().err.splitlines() == lines  # printed on stderr, one line each
    weak = report_classifier("image classifier", 0.61, {"samples": 0.5}, remedy="--classifier-epochs 10")
    assert len(weak) == 2 and weak[1] == ("vaekit: warning: image classifier: only 61.0% right on real examples "
                                          "(under 80%), too weak to judge: samples say little about the model; "
                                          "--classifier-epochs 10")


def test_a_score_above_the_real_accuracy_is_no_evidence():
    assert relative_scores(0.8, {"converted": 0.96})["converted"] == pytest.approx(1.2, abs=1e-12)
    assert relative_scores(0.0, {"converted": 0.5}) == {}  # no ratio to a classifier right on nothing
    lines = report_classifier("speaker classifier", 0.85, {"converted": 0.95, "recon": 0.8}, examples=300)
    assert len(lines) == 2 and lines[1].startswith("vaekit: warning: speaker classifier: converted 1.12 times its "
                                                   "accuracy on 300 real examples: it favours something generated")
    assert lines[1].endswith("so that score is no evidence of quality")
