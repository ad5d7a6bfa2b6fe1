r"""CIFAR-10 (JPEG) training, class transfer, inpainting / super-resolution
against simple baselines, and the 28-pixel grayscale folder trained with no overrides.

    VAEKIT_DATA=../shared/data python benchmarks/image_cifar10.py --device cuda --max-minutes 30
    python benchmarks/image_cifar10.py --parts transfer,folder --device cuda     # only some parts
    python benchmarks/image_cifar10.py --smoke                                   # every part, tiny: proves it runs

Parts (each prints its figures and writes its result files; one JSON line with all of them comes last):
- cifar: recipes/image/cifar10.yaml for --max-minutes; test bits/dim (k = --iw-samples), a small
  classifier's accuracy on real test images and on their reconstructions, the training images/s,
  inpainting (16x16 box on 32x32) against mean and
  nearest-neighbour fills and x2 / x4 super-resolution (the same unconditional VAE, back-projected to
  the low-res input) against bicubic (PSNR dB, SSIM).
- superres: recipes/image/cifar10_superres.yaml (conditioned on the 16x16 image) for --sr-minutes;
  x2 PSNR/SSIM of its decoded prior mean against bicubic.
- transfer: recipes/image/mnist_cvae.yaml and cifar10_cvae.yaml for --transfer-minutes each; the
  share of test images reconstructed under every other label that the classifier gives that label.
- speed: cifar10.yaml's network trained by the vaekit trainer and by a plain loop, --speed-seconds each,
  alternated --speed-rounds times in one process; each round's ratio, their median and the ratio of the
  summed images/s.
- folder: an ImageFolder tree of MNIST's 10k test digits as grayscale PNGs in a temporary folder,
  `vaekit train recipes/image/folder.yaml data.root=DIR` with no other override (the recipe stops
  itself after 10 minutes), then the share of its samples (`vaekit sample RUN`: the recipe's fitted mixture
  sampler; the prior's draws reported beside) that an MNIST classifier recognises (top class probability
  >= 0.9), beside the same share for real test digits.
Targets: bits/dim <= 5.0; recon accuracy >= 0.8 x real; images/s >= 0.97 x plain; VAE fill and x2 SR
(either SR model) >= 1 dB above mean fill and bicubic; MNIST transfer >= 0.9; folder samples recognised >= 0.8.
The result files (benchmarks/results/ for a run for real): cifar10, cifar10_speed, cifar10_superres,
mnist_cvae, cifar10_cvae, image_folder.
One script of about 440 lines: the parts share the data, the scoring classifier and the trained VAE; each part
is its own function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import (
    REPO,
    add_common_flags,
    log,
    overall_rate,
    seed_override,
    time_steps,
    trainer_windows,
    work_folder,
    write_result,
)

import vaekit
from vaekit.config.recipe import load_recipe
from vaekit.evaluation.evaluate import evaluate
from vaekit.evaluation.samplers import recorded_sampler, use_gmm_sampler
from vaekit.io.checkpoint import resolve_model_dir
from vaekit.plugin import get_plugin
from vaekit.runs import build_model
from vaekit.training.trainer import resolve_device, train

RECIPES = REPO / "recipes" / "image"

REUSE = False  # --reuse: a run folder that already holds a checkpoint is measured again, not retrained
DEFAULT_PARTS = "cifar,superres,transfer,folder"
SEED: list[str] = []  # --seed: the seed override of every recipe trained
CIFAR: list[str] = []  # --smoke: the overrides pointing the CIFAR-10 recipes at a small copy of the data set


def train_recipe(name: str, run: Path, overrides: list[str]):
    """Train recipes/image/NAME.yaml into run with overrides; (model, plugin, recipe, seconds)."""
    data = CIFAR if name.startswith("cifar") else []
    recipe = load_recipe(str(RECIPES / f"{name}.yaml"), [*overrides, *SEED, *data])
    started = time.perf_counter()
    if REUSE and (run / "checkpoints").is_dir():
        log(f"{name}: reusing {run}")
        from vaekit.io.checkpoint import checkpoints

        seconds = json.loads((checkpoints(run)[-1] / "state.json").read_text()).get("train_seconds", float("nan"))
    else:
        train(recipe, run)
        seconds = time.perf_counter() - started
    model, plugin = vaekit.load(run, device=resolve_device(recipe.trainer.device))  # where it trained (cuda, say)
    return model.eval(), plugin, load_recipe(str(run / "recipe.yaml"), []), seconds


def bundle_of(plugin, recipe, run: Path):
    return vaekit.build_recipe_data(plugin, recipe, run / "assets")


def classifier_for(model, bundle, recipe, cache: Path, examples: int, epochs: int):
    """The engine-cached SmallClassifier trained on the run's training images and their class labels."""
    from vaekit_image.metrics import image_classifier

    settings = {"data": dataclasses.asdict(recipe.data), "seed": recipe.seed, "labels": "folder classes"}
    return image_classifier(model.decoder.info, lambda: bundle.train, settings, cache, examples=examples,
                            epochs=epochs, labels=bundle.train.labels, device=model.device)


def test_pixels(bundle, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n test images as floats in [0, 1] (no binarization) and their labels."""
    test = bundle.test
    n = min(n, len(test))
    return (test.images[:n].float() / 255).to(device), test.labels[:n]


@torch.no_grad()
def classify(classifier, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([classifier(chunk).argmax(-1).cpu() for chunk in x.split(500)])


def plain_loop_images_per_s(model, recipe, images: torch.Tensor, seconds: float, device) -> float:
    """Images/s of a hand-written loop on the same network: AdamW, the ELBO, the same batch size; 5 warm-up steps
    untimed, then `seconds` of steps."""
    from vaekit.objectives.elbo import ELBO

    model = model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.trainer.lr, fused=device.type in ("cpu", "cuda"))
    objective, batch, g = ELBO(), recipe.trainer.batch_size, torch.Generator().manual_seed(0)
    images = images.to(device)

    def step() -> torch.Tensor:
        idx = torch.randint(len(images), (batch,), generator=g).to(device)
        loss = objective(model, images[idx].float() / 255, None, 10**9).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return overall_rate(time_steps(step, seconds=seconds, untimed=5)) * batch


def trainer_images_per_s(run: Path, batch: int) -> float:
    """Images/s the vaekit trainer logged (metrics.jsonl), over every logged window after the first (which holds
    the warm-up), or over the only one."""
    windows = trainer_windows(run)
    return overall_rate(windows[1:] or windows) * batch


def part_cifar(args, work: Path, device) -> dict:
    from vaekit_image.quality import (
        bicubic,
        box_mask,
        downsample,
        mean_fill,
        nearest_fill,
        summarize,
        vae_inpaint,
        vae_superres,
    )

    run = work / "cifar10"
    overrides = [f"trainer.max_minutes={args.max_minutes}", f"trainer.device={args.device}"] + args.cifar_overrides
    if args.max_steps:
        overrides.append(f"trainer.max_steps={args.max_steps}")
    model, plugin, recipe, seconds = train_recipe("cifar10", run, overrides)
    bundle = bundle_of(plugin, recipe, run)
    out = {"cifar_train_minutes": round(seconds / 60, 2), "cifar_steps": int(json.loads(
        (run / "metrics.jsonl").read_text().splitlines()[-1]).get("step", 0))}
    # Test bits/dim, importance-sampled.
    from torch.utils.data import DataLoader, Subset

    test = Subset(bundle.test, range(min(args.test_examples, len(bundle.test))))
    summary = evaluate(model, DataLoader(test, batch_size=args.eval_batch), iw_samples=args.iw_samples)
    from vaekit_image.metrics import bits_per_dim

    info = model.decoder.info
    out["cifar_test_bits_per_dim"] = round(bits_per_dim(summary["nll"], info, model.decoder.likelihood_name), 4)
    out["cifar_test_elbo_bits_per_dim"] = round(bits_per_dim(-summary["elbo"], info,
                                                             model.decoder.likelihood_name), 4)
    out["cifar_active_units"], out["cifar_iw_samples"], out["cifar_test_images"] = (
        summary["active_units"], args.iw_samples, summary["n_examples"])
    log(f"cifar: {out}")
    # Classifier accuracy on real test images and on their reconstructions.
    classifier = classifier_for(model, bundle, recipe, work / "classifiers", args.classifier_examples,
                                args.classifier_epochs)
    x, y = test_pixels(bundle, args.test_examples, device)
    recon = torch.cat([model.reconstruct(chunk) for chunk in x.split(500)])
    out["cifar_classifier_accuracy_real"] = (classify(classifier, x) == y).float().mean().item()
    out["cifar_classifier_accuracy_recon"] = (classify(classifier, recon) == y).float().mean().item()
    out["cifar_recon_to_real_accuracy"] = out["cifar_classifier_accuracy_recon"] / max(
        out["cifar_classifier_accuracy_real"], 1e-9)
    # The training rate only: the comparison with a plain loop is --parts speed, side by side (a plain loop
    # timed after a 30-minute run meets other load than the run did).
    out["cifar_trainer_images_per_s"] = trainer_images_per_s(run, recipe.trainer.batch_size)
    # Inpainting a 16x16 box in the middle of the 32x32 images, and super-resolution.
    n = min(args.quality_examples, len(x))
    xs = x[:n]
    size = xs.shape[-1]
    lo, hi = size // 4, size // 4 + size // 2
    box = (lo, lo, hi, hi)
    mask = box_mask(size, box, device)
    torch.manual_seed(0)
    for name, filled in [("inpaint_vae", torch.cat([vae_inpaint(model, chunk, mask) for chunk in xs.split(500)])),
                         ("inpaint_mean", mean_fill(xs, mask)), ("inpaint_nearest", nearest_fill(xs, mask))]:
        out.update(summarize(name, filled, xs, mask, crop=box))
    for factor in (2, 4):
        low = downsample(xs, factor)
        vae = torch.cat([vae_superres(model, chunk, factor) for chunk in low.split(500)])
        out.update(summarize(f"sr_x{factor}_vae", vae, xs))
        out.update(summarize(f"sr_x{factor}_bicubic", bicubic(low, size), xs))
    out["inpaint_gain_over_mean_db"] = out["inpaint_vae_psnr"] - out["inpaint_mean_psnr"]
    out["sr_x2_gain_over_bicubic_db"] = out["sr_x2_vae_psnr"] - out["sr_x2_bicubic_psnr"]
    log(f"cifar: {out}")
    write_result(args, "cifar10", f"recipes/image/cifar10.yaml for {out['cifar_train_minutes']} minutes: bits/dim, "
                 "classified reconstructions, inpainting and super-resolution against simple baselines", out,
                 recipe="recipes/image/cifar10.yaml",
                 headline=["cifar_test_bits_per_dim", "cifar_recon_to_real_accuracy", "inpaint_gain_over_mean_db"],
                 notes=f"k = {args.iw_samples} on {out['cifar_test_images']} test images; inpainting and SR on "
                       f"{n}; overrides: {' '.join(overrides + SEED)}")
    return out


def part_speed(args, work: Path, device) -> dict:
    """Images/s of the vaekit trainer and of a plain loop on the same network, alternated --speed-rounds times
    in this one process (so a busy machine slows both alike); the figure is the ratio of the summed rates,
    with each round's ratio and their median beside it."""
    recipe = load_recipe(str(RECIPES / "cifar10.yaml"), [
        f"trainer.device={args.device}", f"trainer.max_minutes={args.speed_seconds / 60}", "trainer.samples=0",
        "trainer.eval_every=1000000", "trainer.checkpoint_every=1000000", "trainer.log_every=20",
        "trainer.progress=false"] + args.cifar_overrides + SEED + CIFAR)
    plugin = get_plugin("image")
    bundle = vaekit.build_recipe_data(plugin, recipe, work / "speed-assets")
    trainer_rates, plain_rates = [], []
    for round_ in range(args.speed_rounds):
        run = work / f"speed-{round_}"
        train(recipe, run)
        trainer_rates.append(trainer_images_per_s(run, recipe.trainer.batch_size))
        fresh = build_model(plugin, recipe.model, bundle.info, work / "speed-assets", recipe.latent).to(device)
        plain_rates.append(plain_loop_images_per_s(fresh, recipe, bundle.train.images, args.speed_seconds, device))
        log(f"speed round {round_}: trainer {trainer_rates[-1]:.1f}, plain {plain_rates[-1]:.1f} images/s")
    ratios = [t / p for t, p in zip(trainer_rates, plain_rates, strict=True)]
    out = {"speed_trainer_images_per_s": trainer_rates, "speed_plain_images_per_s": plain_rates,
           "speed_round_ratios": ratios, "speed_median_ratio": statistics.median(ratios),
           "speed_ratio": sum(trainer_rates) / sum(plain_rates)}
    write_result(args, "cifar10_speed", "cifar10.yaml's network: the vaekit trainer over a plain loop, alternated",
                 out, headline=["speed_median_ratio", "speed_ratio"],
                 notes=f"{args.speed_rounds} alternated rounds of {args.speed_seconds} s each side")
    return out


def part_transfer(args, work: Path, device) -> dict:
    from vaekit_image.metrics import image_classifier, transfer_accuracy

    out = {}
    for name in ("mnist_cvae", "cifar10_cvae"):
        run = work / name
        overrides = [f"trainer.max_minutes={args.transfer_minutes}", f"trainer.device={args.device}"]
        overrides += args.transfer_overrides
        model, plugin, recipe, seconds = train_recipe(name, run, overrides)
        bundle = bundle_of(plugin, recipe, run)
        settings = {"data": dataclasses.asdict(recipe.data), "seed": recipe.seed}
        classifier = image_classifier(model.decoder.info, lambda b=bundle: b.train, settings, work / "classifiers",
                                      examples=args.classifier_examples, epochs=args.classifier_epochs,
                                      device=device)
        x, y = test_pixels(bundle, args.transfer_examples, device)
        if recipe.data.binarize != "none" and name.startswith("mnist"):
            x = torch.bernoulli(x, generator=torch.Generator(device=device).manual_seed(0))
        key = name.split("_")[0]
        out[f"{key}_transfer_minutes"] = round(seconds / 60, 2)
        out[f"{key}_classifier_accuracy_real"] = (classify(classifier, x) == y).float().mean().item()
        out[f"{key}_transfer_accuracy"] = transfer_accuracy(model, classifier, x, y)
        log(f"transfer: {out}")
        write_result(args, name, f"recipes/image/{name}.yaml for {out[f'{key}_transfer_minutes']} minutes: class "
                     "transfer judged by a classifier", {k: v for k, v in out.items() if k.startswith(f"{key}_")},
                     recipe=f"recipes/image/{name}.yaml",
                     headline=[f"{key}_transfer_accuracy", f"{key}_classifier_accuracy_real"],
                     notes=f"{len(x)} test images, each reconstructed under every other label")
    return out


def part_superres(args, work: Path, device) -> dict:
    """x2 super-resolution by recipes/image/cifar10_superres.yaml (a low-res-conditioned CVAE) against bicubic."""
    from vaekit_image.quality import bicubic, downsample, summarize

    run = work / "cifar10_superres"
    overrides = [f"trainer.max_minutes={args.sr_minutes}", f"trainer.device={args.device}"] + args.cifar_overrides
    model, plugin, recipe, seconds = train_recipe("cifar10_superres", run, overrides)
    bundle = bundle_of(plugin, recipe, run)
    x, _ = test_pixels(bundle, args.quality_examples, device)
    factor, size = recipe.data.lowres_factor, x.shape[-1]
    low = downsample(x, factor)
    with torch.no_grad():  # the decoded prior mean given the low-res image, as `vaekit superres` writes it
        up = torch.cat([model.decode(model.prior(c, c.shape[0]).mean, c) for c in low.split(500)])
    out = {"sr_cvae_train_minutes": round(seconds / 60, 2)}
    out.update(summarize(f"sr_x{factor}_cvae", up, x))
    out.update(summarize(f"sr_x{factor}_bicubic", bicubic(low, size), x))
    out[f"sr_x{factor}_cvae_gain_over_bicubic_db"] = out[f"sr_x{factor}_cvae_psnr"] - out[f"sr_x{factor}_bicubic_psnr"]
    log(f"superres: {out}")
    write_result(args, "cifar10_superres", f"recipes/image/cifar10_superres.yaml for {out['sr_cvae_train_minutes']} "
                 f"minutes: x{factor} super-resolution against bicubic", out,
                 recipe="recipes/image/cifar10_superres.yaml",
                 headline=[f"sr_x{factor}_cvae_gain_over_bicubic_db", f"sr_x{factor}_cvae_psnr",
                           f"sr_x{factor}_cvae_ssim"], notes=f"{len(x)} test images")
    return out


def small_cifar(data: Path, root: Path, train: int, test: int) -> Path:
    """The first `train` training and `test` test images of each CIFAR-10 class copied under root, in the same
    layout: the folder loader's path on a data set that decodes in a moment."""
    for split, n in (("train", train), ("test", test)):
        for folder in sorted((data / "cifar10" / split).iterdir()):
            (root / split / folder.name).mkdir(parents=True, exist_ok=True)
            for file in sorted(folder.iterdir())[:n]:
                shutil.copyfile(file, root / split / folder.name / file.name)
    return root


def write_mnist_folder(data: Path, root: Path, limit: int | None = None) -> None:
    """MNIST's 10k test digits (the first `limit`) as root/<digit>/NNNNN.png (8-bit grayscale)."""
    from PIL import Image
    from vaekit_image.mnist import MNIST_FILES, read_idx

    images = read_idx(data / "mnist" / MNIST_FILES["test_images"])
    labels = read_idx(data / "mnist" / MNIST_FILES["test_labels"])
    for i, (image, label) in enumerate(zip(images[:limit], labels[:limit], strict=True)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / f"{i:05d}.png")


def part_folder(args, work: Path, device) -> dict:
    from vaekit_image.metrics import image_classifier

    data = Path(os.environ.get("VAEKIT_DATA", "~/.cache/vaekit/data")).expanduser()
    root, run = work / "mnist_folder", work / "folder_run"
    write_mnist_folder(data, root, 600 if args.smoke else None)
    command = [sys.executable, "-m", "vaekit", "train", str(RECIPES / "folder.yaml"), f"data.root={root}",
               "--out", str(run)] + args.folder_overrides + SEED
    log("folder: " + " ".join(command))
    started = time.perf_counter()
    subprocess.run(command, check=True)
    out = {"folder_train_minutes": round((time.perf_counter() - started) / 60, 2)}
    model, plugin = vaekit.load(run, device=device)
    model.eval()
    saved = load_recipe(str(run / "recipe.yaml"), [])
    out["folder_chosen"] = {"size": saved.data.size, "channels": saved.data.channels, "depth": saved.model.depth}
    # Judge: a classifier trained on MNIST's own training digits (not the folder the VAE saw).
    mnist = load_recipe(str(RECIPES / "mnist.yaml"), ["data.binarize=none"])
    mnist_bundle = plugin.build_data(mnist.data, seed=0, assets=run / "assets")
    classifier = image_classifier(model.decoder.info, lambda: mnist_bundle.train,
                                  {"data": dataclasses.asdict(mnist.data), "labels": "mnist"}, work / "classifiers",
                                  examples=args.classifier_examples, epochs=args.classifier_epochs, device=device,
                                  labels=mnist_bundle.train.labels)

    @torch.no_grad()
    def recognised(images):
        probs = torch.cat([classifier(chunk).softmax(-1).cpu() for chunk in images.split(500)])
        return (probs.max(-1).values >= 0.9).float().mean().item()

    torch.manual_seed(0)
    out["folder_prior_samples_recognised"] = recognised(model.sample(args.folder_samples))
    recorded = recorded_sampler(model)
    if recorded["sampler"] == "gmm":  # what `vaekit sample RUN` draws: the mixture fitted when training ended
        record = use_gmm_sampler(model, plugin, saved, run, recorded["components"], recorded["max_examples"],
                                 resolve_model_dir(run).name)
        out["folder_sampler"] = json.loads(record.read_text())
        torch.manual_seed(0)
    out["folder_samples_recognised"] = recognised(model.sample(args.folder_samples))
    real, _ = test_pixels(mnist_bundle, args.folder_samples, device)
    out["folder_real_recognised"] = recognised(real)
    log(f"folder: {out}")
    write_result(args, "image_folder", "recipes/image/folder.yaml on MNIST's test digits as a grayscale folder: "
                 "samples a classifier recognises", out, recipe="recipes/image/folder.yaml",
                 headline=["folder_samples_recognised", "folder_prior_samples_recognised", "folder_real_recognised"],
                 notes=f"{args.folder_samples} samples; recognised: top class probability >= 0.9")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="CIFAR-10 training minutes (default 30)")
    parser.add_argument("--transfer-minutes", type=float, default=5.0, help="training minutes of each CVAE")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="also stop CIFAR-10 training here (7800 = what 30 minutes on one CPU core reach)")
    parser.add_argument("--folder-minutes", type=float, default=0,
                        help="override the folder recipe's own 10 minutes (the published figure uses no override)")
    parser.add_argument("--sr-minutes", type=float, default=10.0, help="training minutes of the x2 SR model")
    parser.add_argument("--parts", default=DEFAULT_PARTS, help="of cifar, superres, transfer, folder, speed")
    parser.add_argument("--iw-samples", type=int, default=100)
    parser.add_argument("--test-examples", type=int, default=10000)
    parser.add_argument("--eval-batch", type=int, default=100)
    parser.add_argument("--quality-examples", type=int, default=2000, help="test images for inpainting and SR")
    parser.add_argument("--transfer-examples", type=int, default=1000)
    parser.add_argument("--classifier-examples", type=int, default=20000)
    parser.add_argument("--classifier-epochs", type=int, default=5)
    parser.add_argument("--folder-samples", type=int, default=1000)
    parser.add_argument("--speed-seconds", type=float, default=30.0, help="timing window of the plain loop")
    parser.add_argument("--speed-rounds", type=int, default=3, help="speed part: alternated trainer/plain rounds")
    parser.add_argument("--cifar-set", dest="cifar_overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of cifar10.yaml and cifar10_superres.yaml, e.g. model.latent_shape=spatial")
    parser.add_argument("--reuse", action="store_true",
                        help="with --work-dir: measure runs already trained there again instead of retraining")
    args = add_common_flags(parser).parse_args()
    global REUSE
    REUSE = args.reuse
    SEED.extend(seed_override(args))
    args.transfer_overrides, args.folder_overrides = [], []
    if args.smoke:
        args.max_minutes = args.transfer_minutes = args.sr_minutes = 0.2
        args.iw_samples, args.test_examples, args.quality_examples, args.transfer_examples = 2, 50, 50, 50
        args.classifier_examples, args.classifier_epochs, args.folder_samples = 300, 1, 50
        args.speed_seconds, args.speed_rounds = 1, 1
        if args.parts == DEFAULT_PARTS:
            args.parts += ",speed"
        short = ["trainer.max_steps=6", "trainer.eval_every=3", "trainer.log_every=2", "trainer.samples=0",
                 "trainer.eval_batches=1", "subset.train=500", "subset.val=50", "subset.test=50", "model.width=8",
                 "latent.sampler_steps=5", "latent.sampler_examples=200"]
        args.cifar_overrides, args.transfer_overrides = args.cifar_overrides + short, short
        args.folder_overrides = short + ["trainer.max_minutes=0.2"]
    if args.folder_minutes:
        args.folder_overrides.append(f"trainer.max_minutes={args.folder_minutes}")
    torch.manual_seed(0)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    results = {"device": str(device), "torch": torch.__version__}
    parts = {"cifar": part_cifar, "superres": part_superres, "transfer": part_transfer, "folder": part_folder,
             "speed": part_speed}
    with work_folder(args) as work:
        if args.smoke:
            data = Path(os.environ.get("VAEKIT_DATA", "~/.cache/vaekit/data")).expanduser()
            CIFAR.append(f"data.root={small_cifar(data, work / 'cifar10-small', 60, 10)}")
        for part in args.parts.split(","):
            results.update(parts[part](args, work, device))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) and math.isfinite(v) else v
                      for k, v in results.items()}))


if __name__ == "__main__":
    main()
