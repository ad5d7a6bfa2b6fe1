"""β-TCVAE's KL decomposition, InfoVAE's MMD and the plain autoencoder against known answers; the `latent`
section and every objective kind through the CLI on the example third-party plugin."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers_linear_gaussian import LinearGaussianModel

import vaekit
from vaekit import DiagonalGaussian
from vaekit.cli import main
from vaekit.core.estimators import kl_decomposition, mmd
from vaekit.objectives.elbo import Autoencoder, BetaTCVAE, InfoVAE


def aggregate(rho: float, n: int = 3000, posterior_var: float = 0.05, seed: int = 0):
    """Posteriors N(mu_i, s^2 I) with means mu ~ N(0, [[1, rho], [rho, 1]]): q(z) = N(0, Sigma + s^2 I)."""
    g = torch.Generator().manual_seed(seed)
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    mean = torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    q = DiagonalGaussian(mean, torch.full_like(mean, math.log(posterior_var)))
    z = q.mean + q.std * torch.randn(n, 2, generator=g, dtype=torch.float64)
    correlation = rho / (1 + posterior_var)
    return q, z, -0.5 * math.log(1 - correlation**2)  # the aggregate's total correlation, nats


def test_total_correlation_of_independent_codes_is_zero_and_of_correlated_ones_its_closed_form():
    # dataset_size=1: the batch is the whole data set, q(z) the plain mixture of its posteriors
    q, z, _ = aggregate(0.0)
    _, tc, _ = kl_decomposition(z, q, None, dataset_size=1)
    assert abs(tc.mean().item()) < 0.03
    q, z, exact = aggregate(0.9)
    _, tc, _ = kl_decomposition(z, q, None, dataset_size=1)
    assert exact > 0.5 and abs(tc.mean().item() - exact) < 0.06


def test_the_decomposition_sums_to_the_kl_sample_and_minibatch_weighting_shifts_it_by_log_n():
    q, z, _ = aggregate(0.5, n=200)
    prior = DiagonalGaussian.standard((200, 2), dtype=torch.float64)
    mi, tc, dwkl = kl_decomposition(z, q, prior, dataset_size=1)
    torch.testing.assert_close(mi + tc + dwkl, q.log_prob(z) - prior.log_prob(z))
    mi_n, tc_n, dwkl_n = kl_decomposition(z, q, prior, dataset_size=50)
    log_n = math.log(50)  # log q(z) and each log q(z_d) drop by log N: TC rises by (U - 1) log N
    torch.testing.assert_close(tc_n, tc + log_n)
    torch.testing.assert_close(mi_n, mi + log_n)
    torch.testing.assert_close(dwkl_n, dwkl - 2 * log_n)


def test_mmd_is_zero_for_one_distribution_and_positive_for_two():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, 4, generator=g), torch.randn(1000, 4, generator=g)
    same = mmd(a, b).item()
    shifted = mmd(a, b + 0.5).item()
    assert abs(same) < 2e-3 and shifted > 0.02
    assert abs(mmd(a, a.clone()).item()) < 2e-3


def test_objectives_reweigh_the_elbo_terms_as_their_papers_say():
    model = LinearGaussianModel()
    x = model.sample_x(64, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    terms = BetaTCVAE(4.0, dataset_size=64)(model, x)
    mi, tc, dwkl = (terms.extra[k] for k in ("mi", "tc", "dwkl"))
    assert terms.loss.item() == pytest.approx(-terms.log_likelihood.mean().item() + mi + 4 * tc + dwkl, rel=1e-6)
    torch.manual_seed(0)
    info = InfoVAE(alpha=1.0, lam=2.0)(model, x)  # no KL, 2 x MMD
    assert info.loss.item() == pytest.approx(-info.log_likelihood.mean().item() + 2 * info.extra["mmd"], rel=1e-6)
    ae = Autoencoder()(model, x)  # the posterior mean, decoded: no noise, no KL
    expected = -model.log_likelihood(x, model.posterior(x).mean).mean()
    assert ae.loss.item() == pytest.approx(expected.item()) and ae.kl.abs().sum() == 0


@pytest.mark.parametrize("overrides", [
    ["latent.prior=mog", "latent.components=4"],
    ["latent.prior=vamp", "latent.components=5", "latent.posterior=iaf"],
    ["latent.posterior=iaf", "latent.flow_depth=1", "objective.kind=iwae"],
    ["objective.kind=tcvae", "objective.beta=3"],
    ["objective.kind=infovae", "objective.info_alpha=1", "objective.info_lambda=10"],
    ["objective.kind=ae"],
])
def test_latent_and_objective_keys_work_with_a_third_party_plugin(points_recipe, tmp_path, overrides):
    run = tmp_path / "run"
    short = ["trainer.epochs=1", "trainer.eval_every=10", "trainer.checkpoint_every=10"]
    assert main(["train", str(points_recipe), *short, *overrides, "--out", str(run)]) == 0
    model, _ = vaekit.load(run)  # rebuilt from config.json alone: the latent section travels with the model
    if "latent.prior=vamp" in overrides:
        assert type(model.prior_net).__name__ == "VampPrior" and type(model.encoder).__name__ == "IAFEncoder"
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--iw-samples", "5", "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert math.isfinite(results["nll"]) and math.isfinite(results["elbo"]) and math.isfinite(results["rec_mean"])
    if "objective.kind=ae" in overrides:  # trained on the code alone: decoding it beats decoding a noisy draw
        assert results["rec_mean"] < results["rec"]
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "s")]) == 0


def test_a_misspelt_latent_value_is_a_one_line_error(points_recipe, tmp_path, capsys):
    bad = main(["train", str(points_recipe), "latent.prior=vampp", "--out", str(tmp_path / "r")])
    assert bad == 2 and "latent.prior" in capsys.readouterr().err
