"""The vaekit plugin conformance kit on the speech plugin: procedural tones at 8 kHz and a tiny conv-over-time VAE."""

from __future__ import annotations

import math

import numpy as np
import soundfile

from vaekit.testing import PluginConformance


class TestSpeechConformance(PluginConformance):
    plugin_name = "speech"
    data = {"source": "tones", "n_tones": 48, "sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 32,
            "griffin_lim_iters": 2}
    model = {"latent_dim": 4, "channels": [8, 8], "hidden": 16}
    subset = {"train": 16, "val": 4, "test": 4}
    verb_options = {"griffin_lim_iters": 2}

    def example_inputs(self, folder, model):
        paths = []
        for i, hertz in enumerate((220.0, 330.0)):
            t = np.arange(int(0.3 * 8000)) / 8000
            paths.append(folder / f"tone{i}.wav")
            soundfile.write(paths[-1], 0.3 * np.sin(2 * math.pi * hertz * t), 8000)
        return [str(path) for path in paths]
