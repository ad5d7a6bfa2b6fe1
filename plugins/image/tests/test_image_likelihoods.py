"""The RGB discretized logistic: a probability mass over 8-bit colours, and the coupling it adds."""

from __future__ import annotations

import itertools

import pytest
import torch
from vaekit_image.likelihoods import RGBDiscretizedLogistic

from vaekit.core.likelihoods import DiscretizedLogistic


def test_zero_coupling_is_the_per_channel_logistic():
    g = torch.Generator().manual_seed(0)
    means, log_scales = torch.rand(2, 3, 4, 4, generator=g) * 2 - 1, torch.randn(2, 3, 4, 4, generator=g) - 2
    x = torch.randint(0, 256, (2, 3, 4, 4), generator=g).float() / 255 * 2 - 1
    params = torch.cat([means, log_scales, torch.zeros(2, 3, 4, 4)], dim=1)
    expected = DiscretizedLogistic(8).log_prob(torch.cat([means, log_scales], dim=1), x)
    assert torch.allclose(RGBDiscretizedLogistic(8).log_prob(params, x), expected)


def test_masses_over_all_colours_sum_to_one():
    # 2-bit data keeps the 4^3 = 64 colours of one pixel enumerable; coupling must not break normalisation.
    lik = RGBDiscretizedLogistic(bits=2)
    levels = torch.linspace(-1, 1, 4)
    colours = torch.tensor(list(itertools.product(levels.tolist(), repeat=3)))[:, :, None, None]  # [64, 3, 1, 1]
    params = torch.tensor([0.2, -0.3, 0.1, -0.5, -1.0, -0.2, 1.5, -0.7, 2.0])[None, :, None, None].expand(64, 9, 1, 1)
    total = lik.log_prob(params, colours).exp().sum().item()
    assert total == pytest.approx(1.0, abs=1e-4)


def test_coupling_pays_for_shared_errors_once():
    # Pixels whose three channels err together (brightness): coupled green/blue means cost fewer nats.
    g = torch.Generator().manual_seed(1)
    shift = torch.randn(64, 1, 4, 4, generator=g) * 0.3
    x = (shift.expand(64, 3, 4, 4) * 255).round().clamp(-127, 127) / 127.5
    means, log_scales = torch.zeros(64, 3, 4, 4), torch.full((64, 3, 4, 4), -3.0)
    coupled = torch.cat([means, log_scales, torch.tensor([5.0, 0.0, 5.0]).reshape(1, 3, 1, 1).expand(64, 3, 4, 4)], 1)
    independent = torch.cat([means, log_scales, torch.zeros(64, 3, 4, 4)], 1)
    lik = RGBDiscretizedLogistic(8)
    assert lik.log_prob(coupled, x).mean() > lik.log_prob(independent, x).mean() + 50
    # Decoding follows the coupling: green and blue take red's value when their coefficient is large.
    red_up = coupled[:1].clone()
    red_up[:, 0] = 0.5
    decoded = lik.mean(red_up)
    assert torch.allclose(decoded[:, 1], torch.full_like(decoded[:, 1], 0.5 * torch.tanh(torch.tensor(5.0))), atol=1e-4)


def test_rgb_likelihood_in_a_model(tmp_path):
    from image_test_helpers import info, tiny_model

    from vaekit import RecipeError

    model = tiny_model(info(32, channels=3), tmp_path, likelihood="discretized_logistic_rgb", depth=3)
    x = torch.rand(2, 3, 32, 32).mul(255).round().div(255)
    assert model.log_likelihood(x, torch.randn(2, 4)).shape == (2,)
    assert model.sample(3).shape == (3, 3, 32, 32)
    with pytest.raises(RecipeError, match="needs 3-channel images"):
        tiny_model(info(28), tmp_path, likelihood="discretized_logistic_rgb")
