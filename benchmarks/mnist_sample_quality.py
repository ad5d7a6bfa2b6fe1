"""MNIST sample quality: Fréchet distance of prior samples vs GMM-sampler samples, for a VAE and a plain autoencoder.

    VAEKIT_DATA=../shared/data python benchmarks/mnist_sample_quality.py --device cuda        # the full run
    python benchmarks/mnist_sample_quality.py --steps 20 --samples 200 --classifier-examples 2000   # a smoke test

A VAE (recipes/image/mnist.yaml) and the same network trained as an autoencoder (objective.kind=ae) get
the same steps. Each then draws --samples images (Bernoulli draws, like the binarized test images) from
N(0, I) and from a 10-component Gaussian mixture fitted to its training codes (vaekit.samplers, Ghosh et
al. 2020). The Fréchet distance to the test images is taken in the penultimate features of a small
classifier trained here on --classifier-examples labelled training images. Target: the GMM sampler
improves on prior sampling. Prints one JSON line.

The Fréchet distance comes from the engine's shared module (vaekit.classifier_metrics, written on the
image-colour branch) when it is there, else from frechet_distance_local below: the same formula, to swap out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from latent_common import device_name, recipe, train_and_load
from torch import nn
from torch.nn import functional as F


def frechet_distance_local(real: torch.Tensor, fake: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) between Gaussians fitted to features [N, F]."""
    (m1, s1), (m2, s2) = [(f.double().mean(0), torch.cov(f.double().T)) for f in (real, fake)]
    values, vectors = torch.linalg.eigh(s1)
    root = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root @ s2 @ root).clamp(min=0).sqrt().sum()
    return float((m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * cross)


try:  # the engine's shared implementation, once the image helper's branch is merged
    from vaekit.classifier_metrics import frechet_distance
except ImportError:
    frechet_distance = frechet_distance_local


class Classifier(nn.Module):
    """Two conv layers, a 128-unit feature layer, a linear read-out."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                      nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.features(x * 2 - 1))


def train_classifier(device: str, examples: int, epochs: int = 3) -> Classifier:
    from torch.utils.data import DataLoader, Subset

    rec = recipe("recipes/image/mnist.yaml", ["data.condition=label"], device, None)
    from vaekit.plugin import get_plugin

    with tempfile.TemporaryDirectory() as assets:
        data = get_plugin("image").build_data(rec.data, seed=0, assets=Path(assets))
    loader = DataLoader(Subset(data.train, range(min(examples, len(data.train)))), batch_size=128, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    clf = Classifier().to(device)
    optimizer = torch.optim.Adam(clf.parameters(), lr=2e-3)
    for _ in range(epochs):
        for batch in loader:
            loss = F.cross_entropy(clf(batch["x"].to(device)), batch["c"].to(device).long().reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return clf.eval()


@torch.no_grad()
def features(clf: Classifier, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([clf.features(images[i:i + batch] * 2 - 1).cpu() for i in range(0, len(images), batch)])


@torch.no_grad()
def draw(model, n: int, batch: int = 500) -> torch.Tensor:
    """n images from the model's current prior, as Bernoulli draws (the test images are binarized)."""
    return torch.cat([model.sample(min(batch, n - i), mode="sample") for i in range(0, n, batch)])


def main() -> None:
    from vaekit.samplers import gmm_prior

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time cap per model's training")
    p.add_argument("--steps", type=int, default=9300)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--components", type=int, default=10)
    p.add_argument("--classifier-examples", type=int, default=60000)
    p.add_argument("--output", type=Path, default=Path("mnist_sample_quality.json"))
    args = p.parse_args()
    torch.manual_seed(0)
    clf = train_classifier(args.device, args.classifier_examples)
    results = {"device": device_name(args.device), "steps": args.steps, "samples": args.samples,
               "frechet_from": frechet_distance.__module__}
    real = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in (("vae", []), ("ae", ["objective.kind=ae"])):
            rec = recipe("recipes/image/mnist.yaml", [*overrides, f"trainer.max_steps={args.steps}",
                                                      "trainer.max_minutes=null", "trainer.samples=0",
                                                      "trainer.eval_every=1000000",
                                                      f"trainer.checkpoint_every={args.steps}"],
                         args.device, args.max_minutes)
            run = Path(tmp) / name
            model, plugin, minutes, steps = train_and_load(rec, run, args.device)
            data = plugin.build_data(rec.data, seed=rec.seed, assets=Path(model.config["assets_dir"]))
            if real is None:
                test = torch.stack([data.test[i]["x"] for i in range(min(args.samples, len(data.test)))])
                real = features(clf, test.to(args.device))
            prior_fd = frechet_distance(real, features(clf, draw(model, args.samples)))
            model.prior_net, _ = gmm_prior(model, run, data.train, data.collate, args.components)
            gmm_fd = frechet_distance(real, features(clf, draw(model, args.samples)))
            results[name] = {"prior_frechet": prior_fd, "gmm_frechet": gmm_fd, "steps_run": steps,
                             "train_minutes": round(minutes, 2)}
            print(json.dumps({name: results[name]}), flush=True)
    results["target_met"] = results["vae"]["gmm_frechet"] < results["vae"]["prior_frechet"]
    line = json.dumps(results)
    args.output.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
