"""Decoder likelihoods against torch.distributions; the discretised logistic is a true code length; padding."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from vaekit import Bernoulli, Categorical, DiscretizedLogistic, Gaussian, Laplace, get_likelihood


def per_example(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).sum(-1)


def test_bernoulli_matches_torch_for_binary_and_soft_targets():
    logits = 3 * torch.randn(4, 1, 5, 5)
    x = torch.bernoulli(torch.full((4, 1, 5, 5), 0.4))
    lik = Bernoulli()
    assert lik.log_prob(logits, x).shape == (4,)
    assert torch.allclose(lik.log_prob(logits, x), per_example(D.Bernoulli(logits=logits).log_prob(x)), atol=1e-5)
    soft = torch.rand(4, 1, 5, 5)  # probabilities as targets: the cross-entropy of the same form
    expected = per_example(soft * torch.nn.functional.logsigmoid(logits)
                           + (1 - soft) * torch.nn.functional.logsigmoid(-logits))
    assert torch.allclose(lik.log_prob(logits, soft), expected, atol=1e-5)
    assert torch.allclose(lik.mean(logits), torch.sigmoid(logits))


@pytest.mark.parametrize("cls, reference", [(Gaussian, D.Normal), (Laplace, D.Laplace)])
def test_location_scale_with_fixed_scale(cls, reference):
    loc, x = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    lik = cls(scale=0.3)
    expected = per_example(reference(loc, torch.tensor(0.3)).log_prob(x))
    assert torch.allclose(lik.log_prob(loc, x), expected, atol=1e-5)
    assert list(lik.parameters()) == []  # fixed: nothing to train
    assert torch.equal(lik.mean(loc), loc)


@pytest.mark.parametrize("cls, reference", [(Gaussian, D.Normal), (Laplace, D.Laplace)])
def test_location_scale_with_learned_scale_trains_the_scale(cls, reference):
    loc, x = torch.randn(3, 2, 4), 2 * torch.randn(3, 2, 4)
    lik = cls(scale="learned")
    with torch.no_grad():
        lik.log_scale.fill_(math.log(1.7))
    expected = per_example(reference(loc, torch.tensor(1.7)).log_prob(x))
    log_p = lik.log_prob(loc, x)
    assert torch.allclose(log_p, expected, atol=1e-5)
    log_p.sum().backward()
    assert lik.log_scale.grad is not None and lik.log_scale.grad != 0
    assert "log_scale" in lik.state_dict()  # saved with the model


@pytest.mark.parametrize("cls, reference", [(Gaussian, D.Normal), (Laplace, D.Laplace)])
def test_location_scale_with_predicted_scale_splits_channels(cls, reference):
    loc, log_scale = torch.randn(3, 2, 4), 0.5 * torch.randn(3, 2, 4)
    x = torch.randn(3, 2, 4)
    lik = cls(scale="predicted")
    assert lik.params_per_channel == 2
    params = torch.cat([loc, log_scale], dim=1)  # [B, 2C, ...]: locations then log-scales
    expected = per_example(reference(loc, log_scale.exp()).log_prob(x))
    assert torch.allclose(lik.log_prob(params, x), expected, atol=1e-5)
    assert torch.equal(lik.mean(params), loc)
    assert lik.sample(params).shape == x.shape


def test_location_scale_mask_drops_positions():
    loc, x = torch.randn(2, 6), torch.randn(2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    lik = Gaussian(scale=0.5)
    masked = lik.log_prob(loc, x, mask)
    expected = (D.Normal(loc, 0.5).log_prob(x) * mask).sum(-1)
    assert torch.allclose(masked, expected, atol=1e-5)
    x_changed = x.clone()
    x_changed[0, 3:] = 100.0  # garbage under the mask changes nothing
    assert torch.allclose(lik.log_prob(loc, x_changed, mask), masked)


@pytest.mark.parametrize("scale", [0.0, -1.0, "wrong"])
def test_invalid_scales_raise(scale):
    with pytest.raises(ValueError, match="scale"):
        Gaussian(scale=scale)


def levels(bits: int) -> torch.Tensor:
    """Every value an image with this bit depth can take, scaled to [-1, 1]."""
    return torch.arange(2**bits, dtype=torch.float32) / (2**bits - 1) * 2 - 1


@pytest.mark.parametrize("bits", [8, 5])
@pytest.mark.parametrize("mean", [-1.0, -0.33, 0.0, 0.501, 1.0, 1.4])
@pytest.mark.parametrize("log_scale", [-6.0, -3.0, -1.0, 1.0])
def test_discretized_logistic_sums_to_one_over_all_levels(bits, mean, log_scale):
    values = levels(bits)  # one example per level: [L, 1, 1]
    params = torch.tensor([mean, log_scale]).expand(len(values), 2).reshape(-1, 2, 1)
    log_p = DiscretizedLogistic(bits).log_prob(params, values.reshape(-1, 1, 1))
    assert log_p.shape == (2**bits,)
    assert torch.logsumexp(log_p.double(), 0).exp().item() == pytest.approx(1.0, abs=2e-4)
    assert torch.all(log_p <= 1e-6)


def test_discretized_logistic_bin_mass_matches_the_logistic_cdf():
    values = levels(8)
    mean, scale = 0.1, 0.2
    params = torch.tensor([mean, math.log(scale)]).expand(256, 2).reshape(-1, 2, 1)
    log_p = DiscretizedLogistic(8).log_prob(params, values.reshape(-1, 1, 1)).double()
    cdf = lambda v: torch.sigmoid((v.double() - mean) / scale)
    half = 1.0 / 255
    expected = torch.log(cdf(values + half) - cdf(values - half))
    expected[0] = torch.log(cdf(values[:1] + half))[0]  # the lowest level takes the whole left tail
    expected[-1] = torch.log(1 - cdf(values[-1:] - half))[0]  # the top level the right tail
    assert torch.allclose(log_p, expected, atol=1e-4)


def test_categorical_matches_torch_and_ignores_padding():
    pad = 0
    logits = torch.randn(2, 5, 7)
    tokens = torch.tensor([[3, 4, 1, pad, pad], [2, 6, 6, 5, 1]])
    lik = Categorical(pad_id=pad)
    value = lik.log_prob(logits, tokens)
    token_log_p = D.Categorical(logits=logits).log_prob(tokens)
    assert torch.allclose(value, torch.stack([token_log_p[0, :3].sum(), token_log_p[1].sum()]), atol=1e-5)

    # Padded positions never change an example's value: other logits there, or more padding.
    changed = logits.clone()
    changed[0, 3:] = 50 * torch.randn(2, 7)
    assert torch.allclose(lik.log_prob(changed, tokens), value)
    longer_tokens = torch.cat([tokens, torch.full((2, 4), pad)], dim=1)
    longer_tokens[1, 5:] = pad
    longer_logits = torch.cat([logits, torch.randn(2, 4, 7)], dim=1)
    assert torch.allclose(lik.log_prob(longer_logits, longer_tokens), value, atol=1e-5)


def test_categorical_explicit_mask_and_no_padding():
    logits = torch.randn(2, 4, 6)
    tokens = torch.randint(0, 6, (2, 4))
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    expected = (D.Categorical(logits=logits).log_prob(tokens) * mask).sum(-1)
    assert torch.allclose(Categorical().log_prob(logits, tokens, mask), expected, atol=1e-5)
    assert torch.allclose(Categorical().log_prob(logits, tokens), D.Categorical(logits=logits).log_prob(tokens).sum(-1),
                          atol=1e-5)
    assert torch.equal(Categorical().mean(logits), logits.argmax(-1))


def test_get_likelihood_by_name():
    assert isinstance(get_likelihood("laplace", scale="learned"), Laplace)
    assert isinstance(get_likelihood("discretized_logistic", bits=5), DiscretizedLogistic)
    with pytest.raises(ValueError, match="bernoulli"):
        get_likelihood("poisson")
