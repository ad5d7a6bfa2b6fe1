"""The vaekit plugin conformance kit run on this plugin: `pytest tests/` once the package is pip-installed."""

from __future__ import annotations

from vaekit.testing import PluginConformance


class TestSeriesConformance(PluginConformance):
    plugin_name = "series"
    data = {"source": "sines", "length": 16, "n_train": 32, "n_val": 8, "n_test": 8}
    model = {"encoder": "conv", "latent_dim": 2, "hidden": 8, "channels": 4}
    subset = {"train": 16, "val": 8, "test": 8}

    def example_inputs(self, folder, model):
        paths = []
        for sign in (1, -1):  # a ramp up and a ramp down, each file with a header row as a user's CSV may have
            path = folder / f"ramp{sign:+d}.csv"
            header = ",".join(f"t{i}" for i in range(16))
            path.write_text(header + "\n" + ",".join(f"{0.1 * i * sign:.2f}" for i in range(16)) + "\n")
            paths.append(str(path))
        return paths
