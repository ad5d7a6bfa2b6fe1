"""MNIST sample quality: Fréchet distance of prior samples vs GMM-sampler samples, for a VAE and a plain autoencoder.

    VAEKIT_DATA=../shared/data python benchmarks/mnist_sample_quality.py --device cuda        # the full run
    python benchmarks/mnist_sample_quality.py --smoke          # a few steps and samples: checks the script

A VAE (recipes/image/mnist.yaml) and the same network trained as an autoencoder (objective.kind=ae) get
the same steps. Each then draws --samples images (Bernoulli draws, like the binarized test images) from
N(0, I) and from a 10-component Gaussian mixture fitted to its training codes (vaekit.evaluation.samplers, Ghosh et
al. 2020). The Fréchet distance to the test images is taken in the penultimate features of a small
classifier trained here on --classifier-examples labelled training images. Target: the GMM sampler
improves on prior sampling. Prints one JSON line.

The classifier is the image plugin's cached SmallClassifier (vaekit_image.metrics.image_classifier) and the
Fréchet distance, precision and recall (Kynkäänniemi et al. 2019, k = 3) are the engine's
(vaekit.evaluation.classifier_metrics): the same stack `vaekit eval` uses.

Measured with --steps 3000: benchmarks/results/mnist_sample_quality.json (the result file a run writes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch
from common import (
    QUIET,
    add_common_flags,
    budget,
    device_name,
    load_recipe,
    seed_override,
    train_and_load,
    work_folder,
    write_result,
)

from vaekit.evaluation.classifier_metrics import accuracy, frechet_distance, precision_recall, predict
from vaekit.plugin import get_plugin
from vaekit.runs import build_recipe_data


def labelled_mnist(device: str, overrides: list[str]):
    """MNIST with its labels as the condition (the classifier's training data), and the recipe that built it."""
    rec = load_recipe("recipes/image/mnist.yaml", ["data.condition=label", f"trainer.device={device}", *overrides])
    with tempfile.TemporaryDirectory() as assets:
        return build_recipe_data(get_plugin("image"), rec, Path(assets)), rec


@torch.no_grad()
def draw(model, n: int, batch: int = 500) -> torch.Tensor:
    """n images from the model's current prior, as Bernoulli draws (the test images are binarized)."""
    return torch.cat([model.sample(min(batch, n - i), mode="sample") for i in range(0, n, batch)])


def quality(classifier, real: torch.Tensor, images: torch.Tensor) -> dict:
    """Fréchet distance, precision and recall of images against the real features (the engine's metrics)."""
    _, fake = predict(classifier, images.split(500))
    precision, recall = precision_recall(real, fake)
    return {"frechet": frechet_distance(real, fake), "precision": precision, "recall": recall}


def main() -> None:
    from vaekit_image.metrics import image_classifier

    from vaekit.evaluation.samplers import gmm_prior

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time cap per model's training")
    p.add_argument("--steps", type=int, default=9300)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--components", type=int, default=10)
    p.add_argument("--classifier-examples", type=int, default=60000)
    p.add_argument("--cache", type=Path, help="folder caching the classifier (keyed by what it was trained on)")
    args = add_common_flags(p).parse_args()
    smoke = []
    if args.smoke:
        args.steps, args.samples, args.components, args.classifier_examples = 3, 100, 2, 500
        smoke = ["subset.train=500", "data.val_size=64"]
    torch.manual_seed(0)
    labelled, labelled_recipe = labelled_mnist(args.device, [*smoke, *seed_override(args)])
    results = {"device": device_name(args.device), "steps": args.steps, "samples": args.samples}
    with work_folder(args) as work:
        settings = {"data": dataclasses.asdict(labelled_recipe.data), "seed": labelled_recipe.seed}
        clf = image_classifier(labelled.info, lambda: labelled.train, settings, args.cache,
                               examples=args.classifier_examples, epochs=1 if args.smoke else 3, device=args.device)
        items = [labelled.test[i] for i in range(min(args.samples, len(labelled.test)))]
        test = torch.stack([item["x"] for item in items]).to(args.device)
        _, real = predict(clf, test.split(500))
        results["real_test_accuracy"] = accuracy(clf, [(test, torch.stack([item["c"] for item in items]))])
        for name, overrides in (("vae", []), ("ae", ["objective.kind=ae"])):
            rec = load_recipe("recipes/image/mnist.yaml", [
                *overrides, *budget(args.steps, args.max_minutes), *QUIET, f"trainer.checkpoint_every={args.steps}",
                f"trainer.device={args.device}", *smoke, *seed_override(args)])
            run = work / name
            model, plugin, minutes, steps = train_and_load(rec, run, args.device)
            data = build_recipe_data(plugin, rec, Path(model.config["assets_dir"]))
            prior = quality(clf, real, draw(model, args.samples))
            model.prior_net, _ = gmm_prior(model, run, data.train, data.collate, args.components)
            gmm = quality(clf, real, draw(model, args.samples))
            results[name] = {**{f"gmm_{k}": v for k, v in gmm.items()}, **{f"prior_{k}": v for k, v in prior.items()},
                             "steps_run": steps, "train_minutes": round(minutes, 2)}
            print(json.dumps({name: results[name]}), flush=True)
        results["target_met"] = results["vae"]["gmm_frechet"] < results["vae"]["prior_frechet"]
        write_result(args, "mnist_sample_quality", "MNIST sample quality: Fréchet distance of prior and GMM-sampler "
                     "draws, for a VAE and an autoencoder", results,
                     headline=["vae_gmm_frechet", "vae_prior_frechet", "ae_gmm_frechet"],
                     notes=f"{args.steps} steps each, {args.samples} samples against as many test images, "
                           f"{args.components}-component mixture; features of a classifier trained on "
                           f"{args.classifier_examples} training images")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
