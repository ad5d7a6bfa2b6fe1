"""vaekit.core.pooling: one code per example from a sequence latent, checked against answers worked out by hand."""

from __future__ import annotations

import pytest
import torch

from vaekit.core.distributions import DiagonalGaussian
from vaekit.core.pooling import pool_steps, pooled_code, segment_weights


def test_thirds_of_the_valid_steps_and_the_spread_over_all_of_them():
    values = torch.arange(1.0, 8.0).reshape(1, 7, 1)  # steps 1..7; the 7th is padding
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    pooled = pool_steps(values, mask, segments=3)
    spread = torch.tensor([1.0, 2, 3, 4, 5, 6]).std(unbiased=False)  # population std of 1..6: sqrt(35/12)
    assert torch.allclose(pooled, torch.tensor([[1.5, 3.5, 5.5, float(spread)]]), atol=1e-6)


def test_padding_and_its_values_never_change_the_pooled_code():
    torch.manual_seed(0)
    values = torch.randn(2, 9, 3)
    mask = torch.tensor([[1] * 5 + [0] * 4, [1] * 9])
    alone = pool_steps(values[:1, :5], None, segments=2)
    noisy = values.clone()
    noisy[0, 5:] = 1e3  # whatever sits past the end
    assert torch.allclose(pool_steps(noisy, mask, segments=2)[:1], alone, atol=1e-5)
    assert pool_steps(values, mask, segments=2).shape == (2, (2 + 1) * 3)


def test_one_segment_is_the_mean_and_std_over_time():
    torch.manual_seed(1)
    values = torch.randn(4, 6, 5)
    pooled = pool_steps(values, None, segments=1)
    assert torch.allclose(pooled[:, :5], values.mean(1), atol=1e-6)
    assert torch.allclose(pooled[:, 5:], values.std(1, unbiased=False), atol=1e-5)


def test_a_sequence_shorter_than_its_segments_repeats_steps_rather_than_leaving_a_segment_empty():
    weights = segment_weights(torch.tensor([[1.0, 1.0, 0.0]]), 3)  # two valid steps, three segments
    assert weights[0].tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    nothing_valid = pool_steps(torch.ones(1, 3, 2), torch.zeros(1, 3), 2)
    assert torch.allclose(nothing_valid, torch.zeros(1, 6), atol=1e-5)


def test_pooled_code_keeps_a_vector_latent_and_refuses_a_feature_map_in_one_line():
    mean = torch.randn(3, 4)
    assert torch.equal(pooled_code(DiagonalGaussian(mean, torch.zeros(3, 4))), mean)
    steps = DiagonalGaussian(torch.randn(3, 5, 4), torch.zeros(3, 5, 4), event_dims=2, mask=torch.ones(3, 5))
    assert pooled_code(steps, segments=2).shape == (3, 12)
    feature_map = DiagonalGaussian(torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3), event_dims=3)
    with pytest.raises(ValueError, match=r"a vector latent \[D\] or a sequence \[T, D\].*shape \(4, 3, 3\)$"):
        pooled_code(feature_map)
    with pytest.raises(ValueError, match="segments >= 1"):
        pool_steps(torch.zeros(1, 2, 1), None, segments=0)
