"""MIG and SAP on codes whose answer is known: one unit per factor scores near 1, noise near 0, a factor
copied into two units scores 0. (Through `vaekit eval` on shapes: plugins/image/tests/test_image_factors.py.)"""

from __future__ import annotations

import torch

from vaekit.evaluation.disentanglement import mig, sap


def factors(n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(3, (n,), generator=g), torch.randint(6, (n,), generator=g),
                        torch.randint(10, (n,), generator=g)], 1)


def test_one_unit_per_factor_scores_near_one_and_noise_near_zero():
    v = factors()
    g = torch.Generator().manual_seed(1)
    codes = torch.cat([v.double() + 0.01 * torch.randn(v.shape, generator=g, dtype=torch.float64),
                       torch.randn(v.shape[0], 2, generator=g, dtype=torch.float64)], 1)  # + 2 noise units
    score, gaps = mig(codes, v)
    assert score > 0.95 and len(gaps) == 3
    assert sap(codes, v)[0] > 0.95
    noise = torch.randn(v.shape[0], 5, generator=g, dtype=torch.float64)
    assert mig(noise, v)[0] < 0.05 and sap(noise, v)[0] < 0.01


def test_a_factor_copied_into_two_units_has_no_gap():
    v = factors()
    codes = torch.stack([v[:, 0].double(), v[:, 0].double() * 2 + 1, v[:, 1].double(), v[:, 2].double()], 1)
    _, gaps = mig(codes, v)
    assert abs(gaps[0]) < 1e-9 and gaps[1] > 0.95  # factor 0 is in two units; factor 1 in one
    assert abs(sap(codes, v)[1][0]) < 1e-9
