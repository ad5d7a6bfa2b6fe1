"""Inpainting and super-resolution baselines and scores against known answers on tiny arrays."""

from __future__ import annotations

import math

import pytest
import torch
from vaekit_image.quality import bicubic, box_mask, downsample, mean_fill, nearest_fill, psnr, ssim


def test_psnr_known_answers():
    a = torch.zeros(2, 3, 4, 4)
    assert psnr(a, a + 0.1).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # 10 log10(1 / 0.01)
    b = a.clone()
    b[:, :, :2] = 0.5  # half the pixels off by 0.5: mse 0.125
    assert psnr(a, b)[0].item() == pytest.approx(10 * math.log10(8), abs=1e-4)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :2, :] = True  # only the wrong half counts: mse 0.25
    assert psnr(a, b, mask)[0].item() == pytest.approx(10 * math.log10(4), abs=1e-4)


def test_ssim_known_answers():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    # Constant images: variances and covariance are 0, so SSIM is the luminance term (2ab + c1) / (a^2 + b^2 + c1).
    a, b, c1 = 0.2, 0.6, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b)).item() == pytest.approx(expected, 1e-5)
    assert ssim(x, 1 - x).mean() < 0  # anti-correlated structure


def test_mean_and_nearest_fill():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])[None, None] / 10
    mask = box_mask(3, (1, 1, 2, 2))  # the centre pixel
    filled = mean_fill(x, mask)
    assert filled[0, 0, 1, 1].item() == pytest.approx(0.5)  # mean of the 8 known pixels: 40 / 8 / 10
    assert torch.equal(filled[~mask.expand_as(x)], x[~mask.expand_as(x)])
    row = torch.arange(6.0)[None, None, None].repeat(1, 1, 1, 1)  # [1, 1, 1, 6]: 0 1 2 3 4 5
    mask = torch.zeros(1, 1, 1, 6, dtype=torch.bool)
    mask[..., 1:4] = True  # fill 1, 2, 3 from their nearest known neighbours 0 and 4
    assert nearest_fill(row, mask).flatten().tolist() == [0, 0, 0, 4, 4, 5]  # 2 is a tie: first known (0) wins
    rgb = torch.rand(2, 3, 8, 8)
    box = box_mask(8, (2, 2, 6, 6))
    out = nearest_fill(rgb, box)
    assert torch.equal(out[..., 2, 2], rgb[..., 1, 2])  # corner of the box: copied from the pixel above it
    assert torch.equal(out[..., 4, 5], rgb[..., 4, 6])  # right edge: from the pixel to its right


def test_downsample_and_bicubic():
    x = torch.arange(16.0).reshape(1, 1, 4, 4) / 16
    low = downsample(x, 2)
    assert low.flatten().tolist() == pytest.approx([2.5 / 16, 4.5 / 16, 10.5 / 16, 12.5 / 16])
    flat = torch.full((1, 3, 4, 4), 0.3)
    assert torch.allclose(bicubic(flat, 8), torch.full((1, 3, 8, 8), 0.3), atol=1e-6)  # constants stay constant
    ramp = torch.linspace(0, 1, 16)[None, None, None].repeat(1, 1, 16, 1)  # bicubic reproduces a ramp inside
    up = bicubic(downsample(ramp, 2), 16)
    assert torch.allclose(up[..., 4:12, 4:12], ramp[..., 4:12, 4:12], atol=1e-4)


@pytest.mark.parametrize("lowres_layers", [0, 3])
def test_superres_decoder_starts_from_bicubic(lowres_layers, tmp_path):
    from image_test_helpers import info, tiny_model
    from torch import nn

    model = tiny_model(info(32, channels=3, condition="lowres", lowres_factor=2), tmp_path,
                       likelihood="discretized_logistic", depth=3, conditional_prior=True, lowres_layers=lowres_layers)
    assert len(model.decoder.lowres_net) == 2 * lowres_layers
    nn.init.zeros_(model.decoder.out.weight)
    nn.init.zeros_(model.decoder.out.bias)  # no learned detail: the output is the base alone
    c = torch.rand(2, 3, 16, 16)
    out = model.decode(torch.randn(2, 4), c)
    assert torch.allclose(out, bicubic(c, 32), atol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "discretized_logistic"])
def test_vae_inpaint_recovers_a_box_the_decoder_can_explain(likelihood, tmp_path):
    """An image the decoder makes from a known z, a box hidden: fitting z to the known pixels restores the box
    far closer than the nearest-neighbour start, every known pixel is kept, and the weights get no gradients."""
    from image_test_helpers import info, tiny_model
    from vaekit_image.quality import vae_inpaint

    torch.manual_seed(0)
    model = tiny_model(info(16, channels=1), tmp_path, likelihood=likelihood, depth=2)
    with torch.no_grad():
        truth = model.decode(torch.randn(4, 4) * 0.5)
    mask = box_mask(16, (4, 4, 12, 12))
    start = nearest_fill(truth, mask)
    filled = vae_inpaint(model, truth, mask, iterations=200)
    assert torch.equal(filled[..., ~mask[0, 0]], truth[..., ~mask[0, 0]])
    hole = mask[0, 0]
    error_start, error_filled = (start - truth)[..., hole].abs().mean(), (filled - truth)[..., hole].abs().mean()
    assert error_filled < 0.5 * error_start, (error_filled, error_start)  # measured: 0.33 and 0.24 of it
    assert all(p.grad is None for p in model.parameters())
