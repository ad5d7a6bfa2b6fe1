"""The vaekit plugin conformance kit on the image plugin: procedural shapes at 16 pixels and a tiny conv VAE."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vaekit.testing import PluginConformance


class TestImageConformance(PluginConformance):
    plugin_name = "image"
    data = {"name": "shapes", "size": 16, "num_train": 64, "num_val": 16, "num_test": 16}
    model = {"latent_dim": 4, "width": 8, "hidden": 16}
    subset = {"train": 16, "val": 8, "test": 8}

    def example_inputs(self, folder, model):
        paths = []
        for seed in range(2):
            pixels = np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8)
            paths.append(folder / f"input{seed}.png")
            Image.fromarray(pixels).save(paths[-1])
        return [str(path) for path in paths]
