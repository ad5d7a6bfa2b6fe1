"""Engine test fixtures: the example third-party plugin, installed into the test venv as a user would."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = EXAMPLES / "vaekit-points"


def install_example(distribution: str, folder: Path) -> Path:
    """pip-install an example plugin folder (editable, offline) unless its distribution is installed."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "-e", str(folder)], check=True)
        importlib.invalidate_caches()
        site_dirs = [p for p in sys.path if p.endswith("site-packages")]
        for site in site_dirs:  # an editable install adds a .pth file that this process has not read yet
            import site as site_module

            site_module.addsitedir(site)
    return folder


@pytest.fixture(scope="session")
def points_plugin() -> Path:
    """pip-install examples/vaekit-points unless it is installed; return its folder."""
    return install_example("vaekit-points", EXAMPLE)


@pytest.fixture(scope="session")
def series_plugin() -> Path:
    """pip-install examples/vaekit-series unless it is installed; return its folder."""
    return install_example("vaekit-series", EXAMPLES / "vaekit-series")


@pytest.fixture
def points_recipe(points_plugin, tmp_path) -> Path:
    """A fast version of the example recipe (a few hundred steps of a 2-D VAE)."""
    recipe = tmp_path / "points.yaml"
    recipe.write_text(
        "plugin: points\nseed: 3\ndata: {source: moons, n_train: 640, n_val: 128}\n"
        "model: {latent_dim: 2, hidden: 32}\n"
        "objective: {kind: elbo, kl_schedule: {kind: linear, warmup_steps: 20}}\n"
        "trainer: {epochs: 4, batch_size: 32, lr: 0.01, warmup_steps: 5, eval_every: 25, checkpoint_every: 20,"
        " keep_last: 10, log_every: 5, samples: 8, progress: false}\n"
        "eval: {iw_samples: 20, batch_size: 64}\n")
    return recipe
