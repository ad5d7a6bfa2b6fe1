"""Mixture and VampPrior priors, the IAF posterior: known answers by quadrature, change of variables and
the linear-Gaussian model, and the `latent` recipe section end to end."""

from __future__ import annotations

import math

import torch
from helpers_linear_gaussian import LinearGaussianModel

from vaekit import DiagonalGaussian, iw_nll
from vaekit.core.flows import IAF, IAFPosterior
from vaekit.core.priors import GaussianMixture, MixturePrior, VampPrior
from vaekit.objectives.elbo import ELBO, kl_divergence


class MixturePriorModel:
    """z ~ a 1-D mixture of 3 Gaussians; x | z ~ N(W z + b, sigma^2 I_2); q(z|x) a fixed wide Gaussian."""

    def __init__(self):
        self.prior_net = MixturePrior((1,), components=3).double()
        with torch.no_grad():
            self.prior_net.means.copy_(torch.tensor([[-2.0], [0.5], [2.5]]))
            self.prior_net.logvars.copy_(torch.log(torch.tensor([[0.3], [0.6], [0.2]])))
            self.prior_net.logits.copy_(torch.tensor([0.2, -0.4, 0.1]))
        self.W = torch.tensor([1.3, -0.7], dtype=torch.float64)
        self.b = torch.tensor([0.2, 0.1], dtype=torch.float64)
        self.sigma = 0.6

    def posterior(self, x, c=None):
        mean = ((x - self.b) @ self.W / (self.W @ self.W)).unsqueeze(-1)
        return DiagonalGaussian(mean, torch.full_like(mean, math.log(0.8)))

    def prior(self, c=None, batch_size=1, like=None):
        return self.prior_net(c, batch_size, like=like)

    def log_likelihood(self, x, z, c=None):
        residual = x - (z * self.W + self.b)
        return (-0.5 * (residual / self.sigma) ** 2 - math.log(self.sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def quadrature_log_px(self, x):
        """log of the integral of p(x|z) p(z) dz on a fine grid (trapezoid rule), per example."""
        grid = torch.linspace(-12, 12, 24001, dtype=torch.float64)
        p = self.prior(None, 1)
        log_joint = self.log_likelihood(x.unsqueeze(1), grid.reshape(1, -1, 1)) + p.log_prob(grid.reshape(-1, 1))
        return torch.log(torch.trapezoid(log_joint.exp(), grid, dim=-1))


def test_iw_nll_with_a_mixture_prior_equals_the_quadrature_log_px_within_005_nats():
    model = MixturePriorModel()
    x = torch.tensor([[-2.5, 1.6], [0.9, -0.2], [3.4, -1.7], [0.0, 0.0]], dtype=torch.float64)
    torch.manual_seed(0)
    nll = iw_nll(model, x, k=5000).double()
    exact = model.quadrature_log_px(x)
    assert torch.all((nll + exact).abs() < 0.05), (nll, -exact)


def test_the_elbo_with_a_mixture_prior_uses_the_monte_carlo_kl_which_matches_quadrature():
    model = MixturePriorModel()
    q = DiagonalGaussian(torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[-0.5]], dtype=torch.float64))
    p = model.prior(None, 1)
    grid = torch.linspace(-12, 12, 24001, dtype=torch.float64).reshape(-1, 1, 1)
    log_q, log_p = q.log_prob(grid), p.log_prob(grid)
    exact_kl = torch.trapezoid((log_q.exp() * (log_q - log_p)).squeeze(-1), grid.reshape(-1))
    torch.manual_seed(0)
    z = q.rsample(200_000)
    estimates = kl_divergence(q, p, z, q.log_prob(z))
    assert abs(estimates.mean() - exact_kl) < 4.5 * estimates.std() / math.sqrt(z.shape[0])
    terms = ELBO()(model, torch.zeros(6, 2, dtype=torch.float64))
    assert terms.kl_per_dim.numel() == 0  # no closed form: no per-unit split


def test_mixture_sampling_and_density_agree():
    mix = GaussianMixture(torch.tensor([[-3.0], [3.0]]), torch.log(torch.tensor([[0.25], [1.0]])),
                          torch.log(torch.tensor([0.3, 0.7])), batch_size=4)
    torch.manual_seed(0)
    z = mix.sample(50_000)  # [n, 4, 1]
    assert z.shape == (50_000, 4, 1)
    assert abs((z < 0).double().mean().item() - 0.3) < 0.01
    grid = torch.linspace(-10, 10, 4001).reshape(-1, 1)
    assert abs(torch.trapezoid(mix.log_prob(grid).exp(), grid.reshape(-1)).item() - 1.0) < 1e-3


def test_mixture_density_on_a_shaped_latent_equals_torch_distributions_with_its_gradient():
    """The matmul form of log p(z) against MixtureSameFamily on a [2, 3, 4] event, K = 7, values and gradients."""
    torch.manual_seed(0)
    means = torch.randn(7, 2, 3, 4) * 2
    logvars = (torch.randn(7, 2, 3, 4) - 2).requires_grad_()
    logits = torch.randn(7)
    z = (torch.randn(5, 6, 2, 3, 4) * 2).requires_grad_()
    ours = GaussianMixture(means, logvars, logits, batch_size=6).log_prob(z)
    components = torch.distributions.Independent(torch.distributions.Normal(means, (0.5 * logvars).exp()), 3)
    reference = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=logits), components)
    expected = reference.log_prob(z)
    assert ours.shape == (5, 6) and ours.dtype == torch.float32
    assert torch.allclose(ours, expected, rtol=1e-5, atol=1e-3)
    ours_grad = torch.autograd.grad(ours.sum(), [z, logvars])
    expected_grad = torch.autograd.grad(expected.sum(), [z, logvars])
    for a, b in zip(ours_grad, expected_grad, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


class TinyEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(3, 4)

    def forward(self, x, c=None):
        mean, logvar = self.net(x).chunk(2, -1)
        return DiagonalGaussian(mean, logvar)


def test_vampprior_is_the_average_of_the_pseudo_inputs_posteriors():
    torch.manual_seed(0)
    encoder, u = TinyEncoder(), torch.randn(5, 3)
    prior = VampPrior(encoder, u, (2,))
    z = torch.randn(7, 2)
    q_u = encoder(u)
    expected = torch.logsumexp(torch.stack([q_u[k].log_prob(z) for k in range(5)]), 0) - math.log(5)
    torch.testing.assert_close(prior(None, 7).log_prob(z), expected)
    assert not any(name.startswith("_encoder") for name, _ in prior.named_parameters())  # saved once, by the VAE
    prior(None, 7).log_prob(z).sum().backward()
    assert prior.pseudo_inputs.grad.abs().sum() > 0 and encoder.net.weight.grad.abs().sum() > 0


def flow_posterior(model, x, seed=None, depth=2):
    """The linear-Gaussian model's q(z|x) pushed through an IAF (the identity unless seed perturbs it)."""
    flow = IAF(model.z_dim, depth=depth).double()
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.2 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return IAFPosterior(model.posterior(x), flow)


class FlowModel(LinearGaussianModel):
    seed = None

    def posterior(self, x, c=None):
        return flow_posterior(LinearGaussianModel(), x, self.seed)


def test_iw_nll_with_an_identity_flow_posterior_equals_the_exact_log_px_within_005_nats():
    model = FlowModel()
    x = model.sample_x(5, torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    q = model.posterior(x)
    z, log_q = q.rsample_and_log_prob(4)
    torch.testing.assert_close(log_q, q.base.log_prob(z))  # a new flow is exactly the identity
    nll = iw_nll(model, x, k=5000).double()
    assert torch.all((nll + model.exact_log_px(x)).abs() < 0.05)


def test_a_trained_looking_flow_gives_the_change_of_variables_density_and_still_the_exact_nll():
    model = FlowModel()
    model.seed = 11
    x = model.sample_x(3, torch.Generator().manual_seed(4))
    q = model.posterior(x)
    torch.manual_seed(1)
    eps = torch.randn(1, 3, model.z_dim, dtype=torch.float64)
    z0 = q.base.mean + q.base.std * eps
    for b in range(3):  # log q(z) = log q0(z0) - log|det dz/dz0|, the Jacobian by autograd
        def push(v, b=b):
            base = q.base[b:b + 1]
            return q.flow.transform(base, v.reshape(1, 1, -1))[0].reshape(-1)
        jac = torch.autograd.functional.jacobian(push, z0[0, b])
        assert not torch.allclose(jac, torch.eye(model.z_dim, dtype=torch.float64))  # really not the identity
        base = q.base[b:b + 1]
        _, log_det = q.flow.transform(base, z0[:, b:b + 1])
        torch.testing.assert_close(log_det[0, 0], torch.linalg.slogdet(jac)[1])
    torch.manual_seed(0)
    nll = iw_nll(model, x, k=5000).double()
    assert torch.all((nll + model.exact_log_px(x)).abs() < 0.05)


def test_an_iaf_on_a_masked_sequence_acts_per_step_and_leaves_padding_out():
    from vaekit.core.distributions import sequence_mask

    torch.manual_seed(0)
    mask = sequence_mask(torch.tensor([4, 2]), 4)
    base = DiagonalGaussian(torch.randn(2, 4, 3), torch.randn(2, 4, 3) * 0.3, event_dims=2, mask=mask)
    flow = IAF(3, depth=2)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape))
    q = IAFPosterior(base, flow)
    z, log_q = q.rsample_and_log_prob(5)
    assert z.shape == (5, 2, 4, 3) and log_q.shape == (5, 2)
    # row 1 alone (its 2 valid steps, no padding) gives the same density for the same draw
    torch.manual_seed(1)
    z0 = base.rsample(1)
    _, log_det = flow.transform(base, z0)
    alone = DiagonalGaussian(base.mean[1:, :2], base.logvar[1:, :2], event_dims=2)
    _, log_det_alone = flow.transform(alone, z0[:, 1:, :2])
    torch.testing.assert_close(log_det[:, 1], log_det_alone[:, 0])
