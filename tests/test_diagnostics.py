"""Latent diagnostics on synthetic posteriors with known answers: active units, mutual information, KL per dim."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit import DiagonalGaussian, active_units, mutual_information
from vaekit.evaluation.diagnostics import kl_per_dimension


def test_active_units_counts_dimensions_whose_posterior_mean_varies_more_than_001():
    true_variances = torch.tensor([1.0, 0.1, 0.02, 0.005, 0.0, 0.5])
    means = torch.randn(5000, 6, dtype=torch.float64) * true_variances.double().sqrt() + 3.0  # offset is irrelevant
    count, variances = active_units(means)
    assert count == 4  # 1.0, 0.1, 0.02 and 0.5 are above 0.01; 0.005 and 0 are not
    assert variances.shape == (6,)
    assert torch.allclose(variances, true_variances, rtol=0.06, atol=1e-4)
    assert active_units(means, threshold=0.2)[0] == 2
    assert active_units(means, threshold=0.001)[0] == 5


def test_active_units_of_a_single_example_is_zero():
    count, variances = active_units(torch.randn(1, 3))
    assert count == 0 and torch.equal(variances, torch.zeros(3))


def test_mutual_information_is_near_zero_when_the_posterior_ignores_x():
    n, d = 1500, 4
    q = DiagonalGaussian(torch.full((n, d), 0.7), torch.full((n, d), -0.5))  # the same q(z|x) for every x
    mi = mutual_information(q)
    # The estimator averages log q(z) over n single draws; its spread is sqrt(Var log q(z) / n) = sqrt(d / 2n).
    assert abs(mi) < 4.5 * math.sqrt(d / (2 * n))


@pytest.mark.parametrize("scale, noise_var", [(1.0, 0.25), (1.0, 1.0), (2.0, 0.1)])
def test_mutual_information_of_a_gaussian_channel_matches_its_closed_form(scale, noise_var):
    # x ~ N(0, I), q(z|x) = N(scale x, noise_var I): I(x; z) = d/2 log((scale^2 + noise_var) / noise_var).
    n, d = 1500, 2
    x = torch.randn(n, d)
    q = DiagonalGaussian(scale * x, torch.full((n, d), math.log(noise_var)))
    expected = d / 2 * math.log((scale**2 + noise_var) / noise_var)
    assert mutual_information(q) == pytest.approx(expected, abs=0.12)


def test_mutual_information_of_sharp_distinct_posteriors_approaches_log_n():
    n, d = 1500, 2
    q = DiagonalGaussian(10 * torch.randn(n, d), torch.full((n, d), -10.0))  # each z identifies its x
    # With one draw per x the estimate scatters around log(n) by sqrt(d / 2n) (its own component's density).
    assert mutual_information(q) == pytest.approx(math.log(n), abs=4.5 * math.sqrt(d / (2 * n)))


def test_mutual_information_grows_as_posteriors_sharpen():
    n = 500
    means = torch.randn(n, 2)
    values = [mutual_information(DiagonalGaussian(means, torch.full((n, 2), logvar)))
              for logvar in (2.0, 0.0, -2.0, -6.0)]
    assert values == sorted(values)
    assert values[-1] <= math.log(n) + 4.5 * math.sqrt(2 / (2 * n))


def test_kl_per_dimension_is_the_batch_mean_per_latent_dimension():
    q = DiagonalGaussian(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    expected = torch.tensor([(0.5 + 4.5) / 2, 0.5 * (math.e - 1 - 1)])
    assert torch.allclose(kl_per_dimension(q), expected)
    prior = DiagonalGaussian(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert torch.allclose(kl_per_dimension(q, prior), torch.zeros(2))
