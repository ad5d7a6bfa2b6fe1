"""The vaekit plugin conformance kit on the text plugin: the tests' tiny corpus and a tiny LSTM."""

from __future__ import annotations

from text_fixtures import write_corpus

from vaekit.testing import PluginConformance


class TestTextConformance(PluginConformance):
    plugin_name = "text"
    model = {"embed_dim": 16, "hidden_dim": 32, "latent_dim": 4}
    subset = {"train": 16, "val": 4, "test": 4}

    def data_section(self, folder):
        paths = write_corpus(folder / "corpus")
        return {"train": str(paths["train"]), "val": str(paths["val"]), "test": str(paths["test"]), "max_length": 16}

    def example_inputs(self, folder, model):
        return ["the cat sat on the mat", "a dog ran in the park"]

