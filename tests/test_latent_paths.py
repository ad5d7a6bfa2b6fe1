"""The engine's latent paths: one meaning of --steps and --method in every plugin (the CLI's checks: test_cli.py)."""

from __future__ import annotations

import pytest
import torch

import vaekit
from vaekit.latent_paths import mix, path_weights


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
