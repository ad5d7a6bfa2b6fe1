"""Latents with a shape ([B, D], [B, T, D] with a mask, [B, C, H, W]): KL, densities, prior samples, IWAE and
the NLL sum over the latent's axes and never over padding; diagnostics count units and pool valid steps."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit import VAE, DiagonalGaussian, iw_nll
from vaekit.core.distributions import sequence_mask
from vaekit.evaluation.diagnostics import active_units, kl_per_dimension, mutual_information, unit_means
from vaekit.objectives.elbo import ELBO, IWAE, elbo


def shaped(shape, event_dims, seed=3, mask=None):
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(shape, generator=g, dtype=torch.float64),
                            0.5 * torch.randn(shape, generator=g, dtype=torch.float64),
                            event_dims=event_dims, mask=mask)


@pytest.mark.parametrize("shape, event_dims", [((3, 4), 1), ((3, 5, 2), 2), ((2, 3, 4, 4), 3)])
def test_kl_of_a_shaped_latent_matches_monte_carlo_and_sums_every_latent_axis(shape, event_dims):
    q, p = shaped(shape, event_dims, 1), shaped(shape, event_dims, 2)
    z = q.sample(100_000)
    mc = q.log_prob(z) - p.log_prob(z)
    assert q.kl(p).shape == shape[:1]
    se = mc.std(0) / math.sqrt(z.shape[0])
    assert torch.all((q.kl(p) - mc.mean(0)).abs() < 4.5 * se)
    flat = DiagonalGaussian(q.mean.reshape(shape[0], -1), q.logvar.reshape(shape[0], -1))
    torch.testing.assert_close(q.kl(), flat.kl())
    torch.testing.assert_close(q.log_prob(z[:3]), flat.log_prob(z[:3].reshape(3, shape[0], -1)))


def test_padding_never_changes_kl_log_prob_or_entropy():
    lengths = torch.tensor([5, 2, 3])
    mask = sequence_mask(lengths)  # [3, 5]
    q = shaped((3, 5, 4), 2, 1, mask)
    junk = q.mean.clone()
    junk[~mask] = 1e6  # padded steps hold anything: they must not count
    q_junk = DiagonalGaussian(junk, q.logvar.masked_fill(~mask.unsqueeze(-1), 15.0), event_dims=2, mask=mask)
    z = q.sample(4)
    for a, b in [(q.kl(), q_junk.kl()), (q.entropy(), q_junk.entropy())]:
        torch.testing.assert_close(a, b)
    z_junk = z.masked_fill(~mask.unsqueeze(-1), -3e5)
    torch.testing.assert_close(q.log_prob(z), q.log_prob(z_junk))
    for b, n in enumerate(lengths.tolist()):  # each row is the flat KL of its valid steps alone
        alone = DiagonalGaussian(q.mean[b, :n].reshape(1, -1), q.logvar[b, :n].reshape(1, -1))
        torch.testing.assert_close(q.kl()[b], alone.kl()[0])
    per_unit = q.kl_per_unit()  # [B, D]: summed over valid steps
    assert per_unit.shape == (3, 4)
    torch.testing.assert_close(per_unit.sum(-1), q.kl())
    assert kl_per_dimension(q).shape == (4,)


class SequenceLinearGaussian(torch.nn.Module):
    """x_t = W z_t + b + noise per valid step; q(z_t|x_t) a deliberately imperfect Gaussian; exact log p(x) known."""

    def __init__(self, x_dim=3, z_dim=2, sigma=0.5):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        qr, _ = torch.linalg.qr(torch.randn(x_dim, z_dim, generator=g, dtype=torch.float64))
        self.scales = torch.tensor([1.0, 1.7], dtype=torch.float64)
        self.W, self.b = qr * self.scales, torch.randn(x_dim, generator=g).double()
        self.sigma, self.z_dim = sigma, z_dim
        self.latent_shape = (None, z_dim)

    def exact_log_px(self, x, mask):
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.W.shape[0], dtype=torch.float64)
        per_step = torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)
        return (per_step * mask).sum(-1)

    def posterior(self, x, c=None):
        values, mask = x
        var = 1.0 / (1.0 + self.scales**2 / self.sigma**2)
        mean = var * ((values - self.b) @ self.W) / self.sigma**2
        std = var.sqrt()
        return DiagonalGaussian(mean + 0.3 * std, (torch.log(2 * var)).expand_as(mean), event_dims=2, mask=mask)

    def prior(self, c=None, batch_size=1, like=None):
        return DiagonalGaussian.standard(like.mean.shape, dtype=torch.float64, event_dims=2, mask=like.mask)

    def log_likelihood(self, x, z, c=None):
        values, mask = x
        residual = values - (z @ self.W.T + self.b)
        per_step = (-0.5 * (residual / self.sigma) ** 2 - math.log(self.sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
        return (per_step * mask).sum(-1)


def sequence_data(n=4, steps=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([6, 2, 4, 1])[:n]
    mask = sequence_mask(lengths, steps)
    values = torch.randn(n, steps, 3, generator=g, dtype=torch.float64) * 1.5
    return values, mask


def test_iw_nll_of_a_sequence_latent_equals_the_exact_log_px_within_005_nats():
    model, x = SequenceLinearGaussian(), sequence_data()
    torch.manual_seed(0)
    nll = iw_nll(model, x, k=5000)
    exact = model.exact_log_px(*x)
    assert torch.all((nll.double() + exact).abs() < 0.05), (nll, -exact)
    values, mask = x
    padded = values.masked_fill(~mask.unsqueeze(-1), 1e3)  # padding never reaches the answer
    torch.manual_seed(0)
    torch.testing.assert_close(iw_nll(model, (padded, mask), k=5000), nll)


def test_iwae_and_elbo_on_a_sequence_latent_are_below_log_px_and_ordered():
    model, x = SequenceLinearGaussian(), sequence_data()
    exact = model.exact_log_px(*x)
    torch.manual_seed(0)
    e = torch.stack([ELBO()(model, x).elbo for _ in range(400)]).mean(0)
    iwae = torch.stack([IWAE(50)(model, x).elbo for _ in range(40)]).mean(0)
    assert torch.all(e < iwae) and torch.all(iwae < exact + 1e-3)


def test_diagnostics_pool_the_valid_steps_of_a_sequence_latent():
    lengths = torch.tensor([3, 1, 2])
    mask = sequence_mask(lengths)
    mean = torch.zeros(3, 3, 2)
    mean[..., 0] = torch.arange(9.0).reshape(3, 3)  # unit 0 varies, unit 1 is constant
    q = DiagonalGaussian(mean, torch.zeros_like(mean), event_dims=2, mask=mask)
    rows = unit_means(q)
    assert rows.shape == (6, 2)  # one row per valid step
    assert torch.equal(rows[:, 0], torch.tensor([0.0, 1, 2, 3, 6, 7]))
    assert active_units(rows)[0] == 1
    same = DiagonalGaussian(torch.zeros(400, 5, 2), torch.zeros(400, 5, 2), event_dims=2,
                            mask=sequence_mask(torch.randint(1, 6, (400,)), 5))
    assert abs(mutual_information(same)) < 0.2  # every step has the same q: I = 0


def test_a_feature_map_latent_counts_each_coordinate_as_a_unit():
    q = shaped((6, 2, 3, 3), 3)
    assert unit_means(q).shape == (6, 18)
    assert q.kl_per_unit().shape == (6, 18)
    terms = elbo(torch.zeros(6, dtype=torch.float64), q, free_bits=0.0)
    assert terms.kl_per_dim.shape == (18,)
    torch.testing.assert_close(terms.kl, q.kl())


class _Decoder(torch.nn.Module):
    def generate(self, z, c=None):
        return z


def test_prior_samples_take_a_length_or_a_size():
    seq = VAE(torch.nn.Identity(), _Decoder(), 4, latent_shape=(None, 4))
    z = seq.sample(3, length=7)
    assert z.shape == (3, 7, 4)
    assert seq.sample(2, length=torch.tensor([5, 2])).shape == (2, 5, 4)
    with pytest.raises(ValueError, match="free length"):
        seq.sample(2)
    spatial = VAE(torch.nn.Identity(), _Decoder(), 4 * 8 * 8, latent_shape=(4, 8, 8))
    assert spatial.sample(2).shape == (2, 4, 8, 8)
    assert spatial.sample(2, shape=(4, 16, 16)).shape == (2, 4, 16, 16)  # a bigger canvas, same model
    prior = spatial.prior(None, 2)
    assert prior.event_shape == (4, 8, 8) and prior.kl().shape == (2,)
