"""CIFAR-10 samples of the kind of the data: N(0, I), a fitted Gaussian mixture and a latent PixelCNN side by side.

    OMP_NUM_THREADS=1 vaekit train recipes/image/cifar10.yaml trainer.max_minutes=10 --out runs/cifar10
    OMP_NUM_THREADS=1 python benchmarks/image_cifar10_samples.py --run runs/cifar10 --record
    python benchmarks/image_cifar10_samples.py --smoke                  # trains 20 steps: checks the script

A run of recipes/image/cifar10.yaml (spatial latent 16 x 8 x 8) draws --samples images from each sampler
(vaekit/evaluation/samplers.py: prior = N(0, I); gmm = a full-covariance Gaussian mixture over the flattened posterior
means; pixelcnn = an autoregressive prior over the latent pixels, vaekit/core/latent_priors.py), each fitted to the
run's training codes: the recipe's sampler as `vaekit sample` fits it (latent.sampler_* settings), the GMM
with EM capped at --gmm-iterations (one EM iteration over 1,024 units takes half a CPU-minute). Every image is
decoded to the likelihood's mean.

The judge is the image plugin's SmallClassifier trained on the CIFAR-10 training images and their folder
classes (no weights can be downloaded, so there is no Inception network): the Fréchet distance is in the
vaekit classifier's feature space, not Inception FID, and so are precision and recall (Kynkäänniemi et al.
2019, k = 3 nearest neighbours), all against every test image. confident_share: the share of images whose
top class probability is >= 0.9; confident_ratio: that share over the real test images' share (the issue's
target: at least 0.5). The test images' reconstructions are judged the same way (recon_*): what any prior over
this latent can reach. Prints one JSON line; --record writes benchmarks/results/cifar10_samples.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = "recipes/image/cifar10.yaml"
CONFIDENT = 0.9  # top class probability that counts an image as confidently labelled


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@torch.no_grad()
def judge(classifier, images: torch.Tensor, real_features: torch.Tensor | None) -> dict:
    """Confident share, and (against real_features) Fréchet distance, precision and recall of images [N, C, H, W]."""
    from vaekit.evaluation.classifier_metrics import frechet_distance, precision_recall

    probs, features = [], []
    for chunk in images.split(500):
        h = classifier.features(chunk)
        probs.append(classifier.head(h).softmax(-1).cpu())
        features.append(h.float().cpu())
    probs, features = torch.cat(probs), torch.cat(features)
    out = {"confident_share": (probs.max(-1).values >= CONFIDENT).float().mean().item(), "features": features,
           "predicted": probs.argmax(-1)}
    if real_features is not None:
        out["frechet"] = frechet_distance(real_features, features)
        out["precision"], out["recall"] = precision_recall(real_features, features, k=3)
    return out


@torch.no_grad()
def draw(model, n: int, seed: int, batch: int = 500) -> torch.Tensor:
    """n images decoded (to the likelihood's mean) from latents of the model's current prior."""
    torch.manual_seed(seed)
    return torch.cat([model.sample(min(batch, n - i), mode="mean").clamp(0, 1) for i in range(0, n, batch)])


def gmm_baseline(model, data, components: int, examples: int, iterations: int):
    """A full-covariance mixture over the flattened posterior means of the first `examples` training images
    (EM capped at `iterations`: one iteration over 1,024 units takes about half a CPU-minute)."""
    from vaekit.core.fitted_priors import FittedPrior
    from vaekit.evaluation.samplers import encode_means, fit_gmm

    points = encode_means(model, data.train, data.collate, max_examples=examples)
    params, log_lik = fit_gmm(points, components, iterations=iterations)
    return FittedPrior({k: v.to(model.device) for k, v in params.items()}, model.latent_shape), log_lik


def main() -> None:
    from vaekit_image.metrics import image_classifier

    import vaekit
    from vaekit import load_recipe
    from vaekit.evaluation.samplers import fitted_prior
    from vaekit.io.checkpoint import resolve_model_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a trained run of cifar10.yaml (default: train one into --work-dir)")
    p.add_argument("--max-minutes", type=float, default=10.0, help="training minutes when there is no --run")
    p.add_argument("--samplers", default="prior,gmm,pixelcnn")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--gmm-components", type=int, default=10)
    p.add_argument("--gmm-examples", type=int, default=10000, help="training codes the GMM is fitted to")
    p.add_argument("--gmm-iterations", type=int, default=10, help="EM iterations of the GMM (at most)")
    p.add_argument("--classifier-examples", type=int, default=20000)
    p.add_argument("--classifier-epochs", type=int, default=5)
    p.add_argument("--work-dir", type=Path, help="training run and classifier cache (default: a temporary folder)")
    p.add_argument("--record", action="store_true", help="write benchmarks/results/cifar10_samples.json")
    p.add_argument("--smoke", action="store_true", help="tiny everything: checks the script end to end")
    args = p.parse_args()
    overrides = ["trainer.progress=false", "trainer.samples=0"]
    if args.smoke:
        args.samples, args.classifier_examples, args.classifier_epochs = 200, 500, 1
        overrides += ["trainer.max_steps=20", "trainer.eval_every=10", "trainer.log_every=5", "subset.train=2000",
                      "latent.sampler=pixelcnn", "latent.sampler_steps=20", "latent.sampler_examples=500"]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        run = args.run
        if run is None:
            from vaekit.training.trainer import train

            run = work / "run"
            train(load_recipe(str(REPO / RECIPE), [*overrides, f"trainer.max_minutes={args.max_minutes}"]), run)
        model, plugin = vaekit.load(run)
        model.eval()
        recipe = load_recipe(str(run / "recipe.yaml"), [])
        latent = load_recipe(str(REPO / RECIPE), overrides).latent  # the sampler settings measured
        data = vaekit.build_recipe_data(plugin, recipe, Path(model.config["assets_dir"]))
        settings = {"data": dataclasses.asdict(recipe.data), "seed": recipe.seed, "labels": "folder classes"}
        started = time.perf_counter()
        classifier = image_classifier(model.decoder.info, lambda: data.train, settings, work / "classifiers",
                                      examples=args.classifier_examples, epochs=args.classifier_epochs,
                                      labels=data.train.labels, device=model.device)
        log(f"classifier: {time.perf_counter() - started:.0f} s")
        test = data.test.images.float() / 255
        real = judge(classifier, test, None)
        metrics = {"real_accuracy": (real["predicted"] == data.test.labels).float().mean().item(),
                   "real_confident_share": real["confident_share"]}
        checkpoint = resolve_model_dir(run).name
        # what any prior over this latent can reach at most: the test images' own codes, decoded the same way
        with torch.no_grad():
            recon = torch.cat([model.reconstruct(chunk, mode="mean").clamp(0, 1) for chunk in test.split(500)])
        result = judge(classifier, recon, real["features"])
        for key in ("frechet", "precision", "recall", "confident_share"):
            metrics[f"recon_{key}"] = result[key]
        metrics["recon_confident_ratio"] = result["confident_share"] / max(real["confident_share"], 1e-12)
        log(f"recon: {json.dumps({k: v for k, v in metrics.items() if k.startswith('recon')})}")
        prior = model.prior_net
        for kind in args.samplers.split(","):
            started = time.perf_counter()
            if kind == "gmm":
                model.prior_net, log_lik = gmm_baseline(model, data, args.gmm_components, args.gmm_examples,
                                                        args.gmm_iterations)
                log(f"gmm: mean log-likelihood {log_lik:.1f} nats ({time.perf_counter() - started:.0f} s)")
            elif kind != "prior":  # the recipe's sampler, fitted and kept in RUN/samplers as `vaekit sample` does
                model.prior_net, record = fitted_prior(model, run, data.train, data.collate, kind,
                                                       latent.sampler_components, latent.sampler_examples,
                                                       checkpoint, latent.sampler_steps)
                log(f"{kind}: {record} ({time.perf_counter() - started:.0f} s)")
            images = draw(model, args.samples, seed=0)
            result = judge(classifier, images, real["features"])
            model.prior_net = prior
            for key in ("frechet", "precision", "recall", "confident_share"):
                metrics[f"{kind}_{key}"] = result[key]
            metrics[f"{kind}_confident_ratio"] = result["confident_share"] / max(real["confident_share"], 1e-12)
            log(f"{kind}: {json.dumps({k: v for k, v in metrics.items() if k.startswith(kind)})} "
                f"({time.perf_counter() - started:.0f} s)")
    metrics = {k: round(v, 4) for k, v in metrics.items()}
    print(json.dumps(metrics))
    if args.record and not args.smoke:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_table import record_result

        best = latent.sampler
        command = (f"OMP_NUM_THREADS=1 vaekit train {RECIPE} trainer.max_minutes={recipe.trainer.max_minutes:g} "
                   f"--out runs/cifar10 && OMP_NUM_THREADS=1 python benchmarks/image_cifar10_samples.py "
                   f"--run runs/cifar10 --samples {args.samples} --record")
        notes = (f"{args.samples:,} samples of each sampler against all 10,000 test images, decoded to the "
                 f"likelihood's mean. Fréchet distance in the vaekit classifier's feature space, not Inception FID "
                 f"(no weights can be downloaded): the image plugin's SmallClassifier trained on "
                 f"{args.classifier_examples:,} CIFAR-10 training images for {args.classifier_epochs} epochs "
                 f"({metrics['real_accuracy']:.1%} on the test images); precision/recall (Kynkäänniemi et al. "
                 f"2019, k = 3) in the same features. confident_share: share of images with top class probability "
                 f">= {CONFIDENT}; confident_ratio: over the real test images' share. recon: the test images' "
                 f"reconstructions (posterior mean decoded the same way), the ceiling of any prior over this "
                 f"latent. prior: N(0, I); gmm: "
                 f"{args.gmm_components}-component full-covariance mixture over the flattened posterior means of "
                 f"{args.gmm_examples:,} training images, EM capped at {args.gmm_iterations} iterations; pixelcnn: "
                 f"the latent PixelCNN (vaekit/core/latent_priors.py) with the recipe's latent.sampler_* settings. The "
                 f"recipe's sampler: {best}. The VAE: {checkpoint}.")
        path = record_result("cifar10_samples",
                             "recipes/image/cifar10.yaml: samples from N(0, I), a fitted GMM and a latent PixelCNN",
                             command, metrics, recipe=RECIPE, notes=notes,
                             headline=[f"{best}_frechet", f"{best}_confident_ratio", "prior_frechet"])
        log(f"written: {path}")


if __name__ == "__main__":
    main()
