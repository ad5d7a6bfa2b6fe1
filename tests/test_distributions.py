"""DiagonalGaussian: analytic KLs against Monte Carlo, densities against torch.distributions, sampling, clamping."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit import DiagonalGaussian
from vaekit.core.distributions import LOGVAR_MAX, LOGVAR_MIN

N_MC = 200_000


def gaussians():
    """q and p: [3, 4] batches of diagonal Gaussians in float64 with varied means and variances."""
    generator = torch.Generator().manual_seed(7)
    q = DiagonalGaussian(torch.randn(3, 4, generator=generator, dtype=torch.float64),
                         torch.randn(3, 4, generator=generator, dtype=torch.float64))
    p = DiagonalGaussian(torch.randn(3, 4, generator=generator, dtype=torch.float64),
                         0.5 * torch.randn(3, 4, generator=generator, dtype=torch.float64))
    return q, p


def assert_matches_monte_carlo(analytic: torch.Tensor, samples: torch.Tensor):
    """analytic [*batch] equals the mean of samples [n, *batch] within 4.5 standard errors of that mean."""
    estimate = samples.mean(0)
    standard_error = samples.std(0) / math.sqrt(samples.shape[0])
    assert torch.all((analytic - estimate).abs() < 4.5 * standard_error), (analytic, estimate, standard_error)


def test_kl_to_standard_normal_matches_monte_carlo():
    q, _ = gaussians()
    z = q.sample(N_MC)  # [n, 3, 4]
    standard = DiagonalGaussian.standard(q.mean.shape, dtype=torch.float64)
    assert_matches_monte_carlo(q.kl(), q.log_prob(z) - standard.log_prob(z))
    assert torch.allclose(q.kl(None), q.kl(standard))


def test_kl_to_another_diagonal_gaussian_matches_monte_carlo():
    q, p = gaussians()
    z = q.sample(N_MC)
    assert_matches_monte_carlo(q.kl(p), q.log_prob(z) - p.log_prob(z))
    assert torch.all(q.kl(p) > 0)
    assert torch.allclose(q.kl(q), torch.zeros(3, dtype=torch.float64), atol=1e-12)


def test_kl_per_dimension_matches_monte_carlo_per_dimension():
    q, p = gaussians()
    z = q.sample(N_MC)  # each dimension's log-density ratio on its own
    log_ratio = (torch.distributions.Normal(q.mean, q.std).log_prob(z)
                 - torch.distributions.Normal(p.mean, p.std).log_prob(z))
    assert q.kl_per_dim(p).shape == (3, 4)
    assert_matches_monte_carlo(q.kl_per_dim(p), log_ratio)
    assert torch.allclose(q.kl_per_dim(p).sum(-1), q.kl(p))
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(q.mean, q.std),
                                                 torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(q.kl_per_dim(), expected)


def test_log_prob_and_entropy_match_torch_distributions():
    q, _ = gaussians()
    reference = torch.distributions.Independent(torch.distributions.Normal(q.mean, q.std), 1)
    z = torch.randn(5, 3, 4, dtype=torch.float64)  # extra leading sample dimension
    assert torch.allclose(q.log_prob(z), reference.log_prob(z))
    assert torch.allclose(q.entropy(), reference.entropy())
    assert q.log_prob(z).shape == (5, 3)


def test_rsample_shapes_and_statistics():
    q = DiagonalGaussian(torch.tensor([[1.0, -2.0]]), torch.log(torch.tensor([[4.0, 0.25]])))
    assert q.rsample().shape == (1, 2)
    assert q.rsample(7).shape == (7, 1, 2)
    z = q.rsample(100_000)
    assert torch.allclose(z.mean(0), q.mean, atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([[2.0, 0.5]]), rtol=0.02)
    assert torch.allclose(q.rsample(3, temperature=0.0), q.mean.expand(3, 1, 2))
    assert torch.allclose(q.rsample(50_000, temperature=0.5).std(0), torch.tensor([[1.0, 0.25]]), rtol=0.03)
    assert torch.equal(q.mode(), q.mean)
    assert q.dim == 2


def test_rsample_is_reparameterised_and_sample_is_not():
    mean = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    q = DiagonalGaussian(mean, logvar)
    q.rsample(4).sum().backward()
    assert torch.allclose(mean.grad, torch.full((2, 3), 4.0))  # d(mean + std * eps)/d mean = 1 per sample
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0
    assert not q.sample(4).requires_grad


def test_extreme_log_variances_are_clamped_and_everything_stays_finite():
    q = DiagonalGaussian(torch.tensor([[0.0, 1.0, -1.0]]), torch.tensor([[1e4, -1e4, float("inf")]]))
    assert q.logvar.max() <= LOGVAR_MAX and q.logvar.min() >= LOGVAR_MIN
    other = DiagonalGaussian(torch.zeros(1, 3), torch.tensor([[-1e4, 1e4, 0.0]]))
    for value in (q.kl(), q.kl(other), other.kl(q), q.entropy(), q.log_prob(q.rsample(5)), q.rsample(5)):
        assert torch.isfinite(value).all()
    assert torch.isfinite(DiagonalGaussian(torch.zeros(1, 2, dtype=torch.bfloat16),
                                           torch.full((1, 2), 300.0, dtype=torch.bfloat16)).kl()).all()


def test_kl_gradient_is_finite_even_at_clamped_log_variances():
    logvar = torch.tensor([[500.0, -500.0, 0.0]], requires_grad=True)
    DiagonalGaussian(torch.ones(1, 3), logvar).kl().sum().backward()
    assert torch.isfinite(logvar.grad).all()


def test_standard_expand_and_indexing():
    standard = DiagonalGaussian.standard((2, 3))
    assert torch.equal(standard.mean, torch.zeros(2, 3)) and torch.equal(standard.var, torch.ones(2, 3))
    q = DiagonalGaussian(torch.arange(6.0).reshape(2, 3), torch.zeros(2, 3))
    assert torch.equal(q[1].mean, torch.tensor([3.0, 4.0, 5.0]))
    expanded = DiagonalGaussian(torch.zeros(1, 3), torch.zeros(1, 3)).expand_like(torch.zeros(4, 3))
    assert expanded.mean.shape == (4, 3) and expanded.logvar.shape == (4, 3)


def test_mismatched_mean_and_logvar_shapes_raise():
    with pytest.raises(ValueError, match="differ in shape"):
        DiagonalGaussian(torch.zeros(2, 3), torch.zeros(2, 4))
