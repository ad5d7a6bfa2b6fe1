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
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vaekit import VAE
from vaekit.plugin_api import to_device

from .artifacts import model_info


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


# -- a small classifier for judging samples (trained and cached by vaekit.evaluation.classifier_metrics) -------

class SmallClassifier(nn.Module):
    """Two conv layers and a linear read-out: enough to tell digits or shapes apart (93% on MNIST from 5000 images)."""

    version = 1  # part of the cache key: bump when the network changes

    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        self.features_net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The 128-d penultimate layer (Fréchet distance and precision/recall are measured here)."""
        return self.features_net(x * 2 - 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def labelled_batches(dataset, labels: Tensor | None = None, *, examples: int, batch_size: int = 128, seed: int = 0,
                     device: torch.device | str = "cpu", shuffle: bool = True):
    """A function giving (images, labels) batches of the first `examples` items (reshuffled per call if shuffle).

    Labels come from each item's "c", or from `labels` (e.g. a folder's classes when the model is unconditional).
    """
    generator = torch.Generator().manual_seed(seed)
    count = min(examples, len(dataset))

    def batches():
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
        for idx in order.split(batch_size):
            items = [dataset[int(i)] for i in idx]
            x = torch.stack([item["x"] for item in items])
            y = torch.stack([item["c"] for item in items]) if labels is None else labels[idx]
            yield x.to(device), y.long().reshape(-1).to(device)

    return batches


def image_classifier(info: dict, train_dataset_fn, settings: dict, cache_dir: Path | None, *,
                     examples: int = 10000, epochs: int = 2, labels: Tensor | None = None,
                     device: torch.device | str = "cpu") -> SmallClassifier:
    """The run's SmallClassifier, cached under a key of all it was trained on (data settings, examples, epochs)."""
    from vaekit.plugin_api import cached_classifier, fit_classifier

    key = {"plugin": "image", "classifier": f"SmallClassifier-{SmallClassifier.version}", "examples": examples,
           "epochs": epochs, **settings}
    make = lambda: SmallClassifier(info["channels"], info["size"], info["num_classes"]).to(device)
    fit = lambda classifier: fit_classifier(classifier, labelled_batches(
        train_dataset_fn(), labels, examples=examples, device=device), epochs=epochs)
    return cached_classifier(make, fit, key, cache_dir, name="image-classifier")


@torch.no_grad()
def conditional_samples(model: VAE, per_class: int = 100) -> tuple[Tensor, Tensor]:
    """(images [K * per_class, C, S, S], labels) drawn from the prior of a label CVAE, decoded to the mean."""
    info = model_info(model)
    labels = torch.arange(info["num_classes"], device=model.device).repeat_interleave(per_class)
    images = torch.cat([model.sample(chunk.shape[0], chunk) for chunk in labels.split(500)])
    return images, labels


@torch.no_grad()
def conditional_accuracy(model: VAE, classifier: SmallClassifier, per_class: int = 100) -> float:
    """Share of conditional samples (posterior-free: z from the prior, decoder mean) classified as their label."""
    from vaekit.plugin_api import accuracy

    images, labels = conditional_samples(model, per_class)
    return accuracy(classifier, zip(images.split(500), labels.split(500), strict=True))


@torch.no_grad()
def sample_quality(model: VAE, classifier: SmallClassifier, loader, per_class: int = 100,
                   max_batches: int = 20) -> dict[str, float]:
    """Classifier accuracy on conditional samples, real images and class transfers; Fréchet distance, precision,
    recall (real against sampled images, in the classifier's features)."""
    from vaekit.plugin_api import frechet_distance, precision_recall, predict, relative_scores

    images, labels = conditional_samples(model, per_class)
    fake_pred, fake_feat = predict(classifier, images.split(500))
    real_x, real_y = [], []
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        real_x.append(batch["x"].to(model.device))
        real_y.append(batch["c"].reshape(-1).cpu())
    real_pred, real_feat = predict(classifier, real_x)
    real_y = torch.cat(real_y)
    # The accuracy on real images comes first: the scores of generated images mean little beside a weak one.
    real = (real_pred == real_y).float().mean().item()
    scores = {"classifier_accuracy_samples": (fake_pred == labels.cpu()).float().mean().item(),
              # Class transfer: the real images encoded under their label, decoded under every other one.
              "classifier_transfer_accuracy": transfer_accuracy(model, classifier, torch.cat(real_x), real_y)}
    relative = relative_scores(real, scores)
    results = {"classifier_accuracy_real": real, "classifier_real_examples": len(real_y)}
    for key, value in scores.items():  # each score with its ratio to the accuracy on real images beside it
        results[key] = value
        if key in relative:
            results[f"{key}_relative"] = relative[key]
    if min(len(real_feat), len(fake_feat)) > 3:
        results["classifier_frechet"] = frechet_distance(real_feat, fake_feat)
        results["classifier_precision"], results["classifier_recall"] = precision_recall(real_feat, fake_feat)
    return results


def classifier_scores(results: dict) -> dict[str, float]:
    """The accuracies sample_quality measured on generated images (samples, class transfers), by result key."""
    return {key: results[key] for key in ("classifier_accuracy_samples", "classifier_transfer_accuracy")
            if key in results}


@torch.no_grad()
def transfer_accuracy(model: VAE, classifier: SmallClassifier, x: Tensor, labels: Tensor) -> float:
    """Share of class transfers judged as their target: each image reconstructed under every other label."""
    from .artifacts import transfer

    classes = model_info(model)["num_classes"]
    correct = total = 0
    for shift in range(1, classes):
        for xs, ys in zip(x.split(500), labels.split(500), strict=True):
            target = (ys + shift) % classes
            images = transfer(model, xs.to(model.device), ys.to(model.device), target.to(model.device))
            correct += (classifier(images).argmax(-1).cpu() == target.cpu()).sum().item()
            total += ys.numel()
    return correct / max(total, 1)
