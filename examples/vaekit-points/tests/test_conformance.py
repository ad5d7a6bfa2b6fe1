"""The vaekit plugin conformance kit run on this plugin: `pytest tests/` once the package is pip-installed."""

from __future__ import annotations

from vaekit.testing import PluginConformance


class TestPointsConformance(PluginConformance):
    plugin_name = "points"
    data = {"source": "moons", "n_train": 64, "n_val": 16}
    model = {"latent_dim": 2, "hidden": 8}
    subset = {"train": 32, "val": 8, "test": 8}

    def example_inputs(self, folder, model):
        path = folder / "points.csv"
        path.write_text("x,y\n0.1,0.2\n0.5,-0.3\n")
        return [str(path), str(path)]
