"""The engine's latent paths: one meaning of --steps and --method in every plugin (the CLI's checks: test_cli.py)."""

from __future__ import annotations

import pytest
import torch

import vaekit
from vaekit.evaluation.latent_paths import mix, parse_dims, path_weights, traversal


def test_steps_count_every_point_with_both_ends():
    assert path_weights(2).tolist() == [0.0, 1.0]
    assert path_weights(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match=r"--steps: expected 2 or more points \(both ends included\), got 1"):
        path_weights(1)


@pytest.mark.parametrize("shape", [(16,), (4, 3, 3), (7, 2)])  # a vector, a spatial map, a sequence
def test_slerp_stays_on_the_sphere_where_the_line_cuts_inside(shape):
    torch.manual_seed(0)
    a, b = torch.randn(shape), torch.randn(shape)
    b = b * a.norm() / b.norm()  # equal norms: the great circle between them has that norm everywhere
    for method in ("linear", "slerp"):
        path = vaekit.latent_path(a, b, 7, method)
        assert path.shape == (7, *shape)
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b)
    norms = vaekit.latent_path(a, b, 7, "slerp").flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((7,), float(a.norm())))
    middle = vaekit.latent_path(a, b, 3, "linear")[1]
    assert middle.norm() < 0.99 * a.norm()  # the straight line passes nearer the origin
    torch.testing.assert_close(mix(a, a, 0.3, "slerp"), a)  # parallel ends: no division by sin(0)
    with pytest.raises(ValueError, match="--method: expected linear or slerp, got 'cubic'"):
        mix(a, b, 0.5, "cubic")


def test_a_traversal_moves_one_unit_per_row_over_the_span_around_its_base_value():
    base = torch.arange(4.0)
    z = traversal(base, [1, 3], span=2.0, steps=3)
    expected = torch.tensor([[0, -1, 2, 3], [0, 1, 2, 3], [0, 3, 2, 3],
                             [0, 1, 2, 1], [0, 1, 2, 3], [0, 1, 2, 5]], dtype=torch.float32)
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(z[1], base)  # the offset 0 is the base point itself (an input's own decode)
    spatial = traversal(torch.zeros(2, 2, 2), [5], span=1.0, steps=2)  # units are the flattened coordinates
    assert spatial.shape == (2, 2, 2, 2) and spatial[0].flatten()[5] == -1 and spatial[1].flatten()[5] == 1
    assert float(spatial.abs().sum()) == 2.0


def test_dims_are_checked_against_the_latent():
    assert parse_dims(None, 3) == [0, 1, 2]
    assert parse_dims("2,0", 3) == [2, 0] and parse_dims([1], 3) == [1]
    with pytest.raises(ValueError, match=r"--dims: \[3\] outside 0-2"):
        parse_dims("0,3", 3)
    with pytest.raises(ValueError, match="--dims: expected comma-separated integers, e.g. 0,1,2, got 'a,b'"):
        parse_dims("a,b", 3)


def test_a_sequence_latent_moves_each_unit_at_every_step():
    base = torch.zeros(3, 2)  # [T, D]
    z = traversal(base, [1], span=1.0, steps=2, per_step=True)
    assert z.shape == (2, 3, 2)
    torch.testing.assert_close(z[:, :, 1], torch.tensor([[-1.0] * 3, [1.0] * 3]))
    assert float(z[:, :, 0].abs().sum()) == 0.0
    moving = torch.tensor([[0.0, 1.0], [0.0, -2.0], [0.0, 0.5]])  # each step's unit moves around its own value
    z = traversal(moving, [1], span=1.0, steps=3, per_step=True)
    torch.testing.assert_close(z[:, :, 1], torch.tensor([[0.0, -3.0, -0.5], [1.0, -2.0, 0.5], [2.0, -1.0, 1.5]]))
