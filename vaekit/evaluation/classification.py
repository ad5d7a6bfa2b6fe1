"""The classes a semi-supervised model (vaekit.model.semi_supervised.M2Model) gives input files."""

from __future__ import annotations

import torch

from ..core.batch import batch_size


@torch.no_grad()
def classify_inputs(model, plugin, inputs: list[str], run: str = "RUN") -> list[tuple[str, str, float]]:
    """(input, class name, probability of that class under q(y|x)) per example of the plugin's inputs."""
    if not hasattr(model, "classify"):
        raise ValueError(f"{run}: not a semi-supervised run (objective.kind m2); it has no classifier q(y|x)")
    x = plugin.load_inputs(model.plugin_model(), list(inputs))
    probabilities = model.classify(x)
    names = model.config["info"]["semi_supervised"]["class_names"]
    n = batch_size(x)
    if n == len(inputs):
        labels = list(inputs)
    else:  # an input that held several examples (sentences of a text file)
        labels = [f"{inputs[0]}#{i + 1}" if len(inputs) == 1 else f"example {i + 1}" for i in range(n)]
    best = probabilities.max(-1)
    return [(label, names[int(k)], float(p)) for label, k, p in zip(labels, best.indices, best.values, strict=True)]
