"""The ELBO family against a linear-Gaussian model whose log p(x) is exact: IW-NLL, IWAE bound, ELBO, free bits."""

from __future__ import annotations

import math

import pytest
import torch
from helpers_linear_gaussian import LinearGaussianModel

import vaekit
from vaekit import ELBO, IWAE, DiagonalGaussian, KLSchedule, elbo, iw_nll, iwae_bound, log_importance_weights


@pytest.fixture
def model() -> LinearGaussianModel:
    return LinearGaussianModel()


def data(model: LinearGaussianModel, n: int, seed: int = 0) -> torch.Tensor:
    """n points from the model; the generator's seed is offset so the data never shares a random stream with
    the estimators' draws from the global generator (same seed, same numbers: z would equal the true latents)."""
    return model.sample_x(n, torch.Generator().manual_seed(10_000 + seed))


# -- the model itself: the bounds have room to be wrong -------------------------------------------

def test_the_amortised_posterior_is_far_enough_from_exact_for_the_bounds_to_differ(model):
    x = data(model, 4)
    gap = model.exact_log_px(x) - model.analytic_elbo(x)
    assert (gap > 0.3).all()  # a bound that ignored k, or an estimator stuck at the ELBO, would be 0.3+ nats off


# -- importance-sampled NLL -----------------------------------------------------------------------

def test_iw_nll_at_5000_samples_is_within_005_nats_of_the_exact_log_likelihood(model):
    x = data(model, 8)
    nll = iw_nll(model, x, k=5000)
    error = nll.double() + model.exact_log_px(x)  # -log p estimated minus -log p exact
    assert nll.shape == (8,)
    assert error.mean().abs() < 0.05
    assert error.abs().max() < 0.05


def test_iw_nll_does_not_depend_on_the_chunk_size(model):
    x = data(model, 32, seed=1)
    exact = model.exact_log_px(x)
    estimates = {}
    for chunk_size in (None, 3, 7, 5000):
        torch.manual_seed(0)
        estimates[chunk_size] = iw_nll(model, x, k=5000, chunk_size=chunk_size).double()
    # One estimate per example has a standard error of about sqrt(Var w / k) ~ 0.01 nats here; a chunking
    # that averaged per-chunk bounds instead of pooling the weights would be off by the chunk's bound gap
    # (about 0.1 nats for chunks of 3, 0.04 for chunks of 7).
    for chunk_size, nll in estimates.items():
        assert (nll + exact).mean().abs() < 0.012, f"chunk_size={chunk_size}"
        assert (nll - estimates[None]).mean().abs() < 0.012, f"chunk_size={chunk_size}"


def test_iw_nll_is_reproducible_with_the_same_seed(model):
    x = data(model, 5)
    torch.manual_seed(3)
    first = iw_nll(model, x, k=1000, chunk_size=33)
    torch.manual_seed(3)
    second = iw_nll(model, x, k=1000, chunk_size=33)
    assert torch.equal(first, second)


def test_iw_nll_decodes_in_bounded_chunks(model):
    x = data(model, 32)
    iw_nll(model, x, k=5000)
    assert model.max_rows_decoded <= 256  # the documented default: about 256 decoded examples at a time
    model.max_rows_decoded = 0
    iw_nll(model, x, k=5000, chunk_size=10)
    assert model.max_rows_decoded == 10 * 32


def test_iw_nll_with_one_sample_is_minus_a_single_sample_elbo(model):
    x = data(model, 2000, seed=2)
    nll = iw_nll(model, x, k=1).double()
    elbo_exact = model.analytic_elbo(x)
    standard_error = (nll + elbo_exact).std() / math.sqrt(len(x))
    assert (nll + elbo_exact).mean().abs() < 4 * standard_error


# -- IWAE bound -----------------------------------------------------------------------------------

def test_iwae_bound_tightens_as_k_grows_and_stays_below_log_px(model):
    x = data(model, 128)
    exact = model.exact_log_px(x)
    log_w = log_importance_weights(model, x, None, 1000)  # [1000, B]
    assert log_w.shape == (1000, 128)
    mean_bounds = {}
    for k in (1, 10, 100, 1000):
        # 1000 / k independent groups of k weights per example: the mean of their bounds estimates E[bound_k]
        groups = log_w.reshape(1000 // k, k, -1).transpose(0, 1).reshape(k, -1)
        bound = iwae_bound(groups).reshape(1000 // k, -1).mean(0)
        mean_bounds[k] = bound - exact  # per example: how far below log p(x)
    for small, large in ((1, 10), (10, 100), (100, 1000)):
        tightening = mean_bounds[large] - mean_bounds[small]
        standard_error = tightening.std() / math.sqrt(len(tightening))
        assert tightening.mean() > 5 * standard_error, (small, large)
    # The bound is a lower bound: at k=1000 it may touch log p(x) up to its noise, never exceed it by more.
    final = mean_bounds[1000]
    assert final.mean() < 4 * final.std() / math.sqrt(len(final))
    # k=1 is the ELBO, whose exact value we know.
    first = mean_bounds[1] - (model.analytic_elbo(x) - exact)
    assert first.mean().abs() < 4 * first.std() / math.sqrt(len(first))


def test_iwae_bound_formula_on_known_weights():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))  # k=2, B=2
    expected = torch.log(torch.tensor([2.0, 2.0]))  # log of the mean weight
    assert torch.allclose(iwae_bound(log_w), expected)


def test_iwae_objective_matches_the_bound_at_its_k(model):
    x = data(model, 8).repeat(200, 1)  # many independent draws for each of 8 examples
    exact = model.exact_log_px(x)
    gaps = {}
    for k in (1, 10, 100):
        terms = IWAE(k)(model, x)
        assert terms.elbo.shape == (len(x),)
        assert torch.allclose(terms.loss, -terms.elbo.mean())
        gaps[k] = terms.elbo - exact
    assert gaps[1].mean() < gaps[10].mean() < gaps[100].mean() < 0.01
    # k=1: the analytic ELBO gap, 0.397 nats for this model
    analytic = (model.analytic_elbo(x) - exact).mean()
    assert abs(gaps[1].mean() - analytic) < 4 * gaps[1].std() / math.sqrt(len(x))


# -- ELBO -----------------------------------------------------------------------------------------

def test_elbo_objective_is_unbiased_for_the_analytic_elbo_and_below_log_px(model):
    x = data(model, 4000, seed=5)
    terms = ELBO()(model, x)
    exact = model.exact_log_px(x)
    analytic = model.analytic_elbo(x)
    difference = terms.elbo.double() - analytic
    assert difference.mean().abs() < 4 * difference.std() / math.sqrt(len(x))
    assert terms.elbo.mean() < exact.mean() - 0.3
    assert torch.allclose(terms.kl, model.posterior(x).kl())
    assert torch.allclose(terms.elbo, terms.log_likelihood - terms.kl)


def test_elbo_loss_weights_the_kl_by_beta_from_the_schedule(model):
    x = data(model, 16)
    torch.manual_seed(0)
    plain = ELBO()(model, x)
    torch.manual_seed(0)
    warm = ELBO(KLSchedule.linear(warmup_steps=100))(model, x, step=25)
    assert warm.beta == pytest.approx(0.25)
    assert torch.allclose(warm.loss, -plain.log_likelihood.mean() + 0.25 * plain.kl.mean())
    assert torch.allclose(warm.elbo, plain.elbo)  # the reported ELBO is the true one whatever β is


def test_elbo_with_a_non_standard_prior_uses_kl_to_that_prior():
    q = DiagonalGaussian(torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, -1.0]]))
    p = DiagonalGaussian(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
    terms = elbo(torch.tensor([-3.0]), q, p)
    expected_kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mean, q.std), torch.distributions.Normal(p.mean, p.std)).sum(-1)
    assert torch.allclose(terms.kl, expected_kl)
    assert torch.allclose(terms.loss, 3.0 + expected_kl.sum())


# -- free bits ------------------------------------------------------------------------------------

def free_bits_posterior():
    """Four latent dimensions whose batch-mean KL to N(0, I) is well below / well above 0.5 nats."""
    mean = torch.tensor([[0.1, 2.0, 0.0, 1.5], [-0.1, -2.0, 0.2, 1.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, 0.0, -0.1, -1.0], [0.05, 0.0, 0.0, -1.0]], requires_grad=True)
    return mean, logvar


def test_free_bits_replaces_each_dimension_below_the_threshold_by_the_threshold():
    threshold = 0.5
    mean, logvar = free_bits_posterior()
    q = DiagonalGaussian(mean, logvar)
    kl_dim = q.kl_per_dim().mean(0).detach()
    below = kl_dim < threshold
    assert below.tolist() == [True, False, True, False]  # the test is only meaningful with both kinds
    log_px_z = torch.tensor([-10.0, -12.0])
    terms = elbo(log_px_z, q, free_bits=threshold, beta=1.0)
    expected_kl_term = threshold * below.sum() + kl_dim[~below].sum()
    assert torch.allclose(terms.loss, 11.0 + expected_kl_term)
    assert torch.allclose(terms.kl_per_dim, kl_dim)
    assert torch.allclose(terms.elbo, log_px_z - q.kl())  # the reported ELBO ignores free bits

    terms.loss.backward()
    # Below the threshold the optimiser gains nothing by shrinking KL further: zero gradient.
    assert torch.all(mean.grad[:, below] == 0) and torch.all(logvar.grad[:, below] == 0)
    # Above it, the gradient is exactly that of the plain KL term.
    mean2, logvar2 = free_bits_posterior()
    DiagonalGaussian(mean2, logvar2).kl_per_dim().mean(0)[~below].sum().backward()
    assert torch.allclose(mean.grad[:, ~below], mean2.grad[:, ~below])
    assert torch.allclose(logvar.grad[:, ~below], logvar2.grad[:, ~below])
    assert mean.grad[:, ~below].abs().sum() > 0


def test_free_bits_loss_never_counts_a_dimension_below_its_threshold():
    torch.manual_seed(1)
    q = DiagonalGaussian(0.3 * torch.randn(64, 8), 0.2 * torch.randn(64, 8))
    for threshold in (0.0, 0.01, 0.05, 0.2, 1.0):
        terms = elbo(torch.zeros(64), q, free_bits=threshold, beta=2.0)
        per_dim = q.kl_per_dim().mean(0)
        assert torch.allclose(terms.loss, 2.0 * torch.maximum(per_dim, torch.tensor(threshold)).sum())
        assert terms.loss >= 2.0 * 8 * threshold - 1e-6


def test_elbo_objective_passes_free_bits_through(model):
    x = data(model, 16)
    torch.manual_seed(0)
    terms = ELBO(free_bits=5.0)(model, x)  # above every dimension's KL: the KL term is 5 nats per dimension
    assert torch.allclose(terms.loss, -terms.log_likelihood.mean() + 5.0 * model.z_dim)


def test_log_importance_weights_are_log_joint_minus_log_q(model):
    x = data(model, 3)
    torch.manual_seed(0)
    log_w = log_importance_weights(model, x, None, 4)
    torch.manual_seed(0)
    q = model.posterior(x)
    z = q.rsample(4)
    expected = (model.log_likelihood(vaekit.core.batch.tile(x, 4), z.reshape(12, -1)).reshape(4, 3)
                + model.prior(None, 3).log_prob(z) - q.log_prob(z))
    assert torch.allclose(log_w, expected)
