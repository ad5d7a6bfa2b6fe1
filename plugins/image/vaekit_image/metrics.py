"""Image metrics for `vaekit eval`: bits/dim, reconstruction MSE, and a CVAE's label accuracy.

bits/dim = NLL / (D ln 2), with D = channels x height x width:
- bernoulli on binary data and the discretized logistic on 8-bit data: a true code length
  (the NLL is a probability mass);
- gaussian: the NLL is a density of pixels in [0, 1]; we add log2(256) = 8 bits per dimension,
  the usual conversion to 8-bit bins, which is an upper bound on a code length only when the
  model was trained and evaluated on uniformly dequantized data (data.dequantize: true);
  otherwise read it as a comparison number, not a code length.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vaekit import VAE
from vaekit.batch import to_device

from .artifacts import model_info

CLASSIFIER_FILE = "image-classifier.safetensors"


def bits_per_dim(nats: float, info: dict, likelihood: str) -> float:
    """Nats per example -> bits per dimension (pixel x channel); see the module docstring for gaussian."""
    dims = info["channels"] * info["size"] ** 2
    bits = nats / (dims * math.log(2))
    return bits + 8.0 if likelihood == "gaussian" else bits


@torch.no_grad()
def reconstruction_mse(model: VAE, loader, max_batches: int = 0) -> float:
    """Mean squared error per pixel in [0, 1] between each image and the decoded posterior mean."""
    total, count = 0.0, 0
    for i, batch in enumerate(loader):
        if max_batches and i >= max_batches:
            break
        batch = to_device(batch, model.device)
        x, c = batch["x"], batch.get("c")
        total += F.mse_loss(model.reconstruct(x, c), x, reduction="sum").item()
        count += x.numel()
    return total / max(count, 1)


# -- a small classifier for judging conditional samples -------------------------------------------

class SmallClassifier(nn.Module):
    """Two conv layers and a linear read-out: enough to tell digits or shapes apart (93% on MNIST from 5000 images)."""

    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * (size // 4) ** 2, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1)


def train_classifier(dataset, info: dict, *, examples: int = 10000, epochs: int = 2, seed: int = 0,
                     device: torch.device | str = "cpu") -> SmallClassifier:
    """Fit SmallClassifier on the first `examples` training items (labels from the dataset's "c")."""
    from torch.utils.data import DataLoader, Subset

    generator = torch.Generator().manual_seed(seed)
    subset = Subset(dataset, range(min(examples, len(dataset))))
    loader = DataLoader(subset, batch_size=128, shuffle=True, generator=generator)
    classifier = SmallClassifier(info["channels"], info["size"], info["num_classes"]).to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    for _ in range(epochs):
        for batch in loader:
            batch = to_device(batch, device)
            loss = F.cross_entropy(classifier(batch["x"]), batch["c"].long().reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return classifier.eval()


def cached_classifier(model: VAE, train_dataset_fn, cache_dir: Path | None, examples: int = 10000) -> SmallClassifier:
    """A classifier from cache_dir/image-classifier.safetensors, trained and saved there when missing."""
    from safetensors.torch import load_file, save_file

    info = model_info(model)
    path = cache_dir / CLASSIFIER_FILE if cache_dir is not None else None
    classifier = SmallClassifier(info["channels"], info["size"], info["num_classes"])
    if path is not None and path.is_file():
        try:
            classifier.load_state_dict(load_file(str(path)))
            return classifier.to(model.device).eval()
        except (RuntimeError, OSError, ValueError) as exc:  # stale or damaged cache: retrain over it
            warnings.warn(f"{path}: ignoring cached classifier ({exc})", stacklevel=2)
    classifier = train_classifier(train_dataset_fn(), info, examples=examples, device=model.device)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}, str(path))
    return classifier


@torch.no_grad()
def conditional_accuracy(model: VAE, classifier: SmallClassifier, per_class: int = 100) -> float:
    """Share of conditional samples (posterior-free: z from the prior, decoder mean) classified as their label."""
    info = model_info(model)
    labels = torch.arange(info["num_classes"], device=model.device).repeat_interleave(per_class)
    correct = 0
    for chunk in labels.split(500):
        images = model.sample(chunk.shape[0], chunk)
        correct += (classifier(images).argmax(-1) == chunk).sum().item()
    return correct / labels.shape[0]


@torch.no_grad()
def accuracy_on(classifier: SmallClassifier, loader, device, max_batches: int = 20) -> float:
    """The classifier's accuracy on real labelled data (a reference for the accuracy on samples)."""
    correct = total = 0
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        batch = to_device(batch, device)
        correct += (classifier(batch["x"]).argmax(-1) == batch["c"].reshape(-1)).sum().item()
        total += batch["c"].shape[0]
    return correct / max(total, 1)
