"""ImagePlugin: the `image` modality of vaekit (data, models, artifacts, metrics wired to the CLI).

    vaekit train recipes/image/shapes.yaml
    vaekit sample runs/shapes -n 64
    vaekit traverse runs/shapes
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from pathlib import Path

from torch import Tensor

from vaekit import VAE, DataBundle, LearnedConditionalPrior, Plugin, PluginError, RecipeError, build_recipe_data
from vaekit.plugin_api import DemoKinds, SubsetConfig, at_least, run_dir_of

from . import artifacts
from .config import ImageDataConfig, ImageModelConfig


class ImagePlugin(Plugin):
    """Conv/ResNet VAE and CVAE on procedural shapes, MNIST and folders of images."""

    name = "image"
    description = "conv/ResNet VAE and CVAE for 1- or 3-channel images (shapes, MNIST, image folders)"
    data_config = ImageDataConfig
    model_config = ImageModelConfig
    takes_subset = True  # cut before resizing and binarising, and shapes keep their factors
    demo_kinds = DemoKinds(input="image", output="image")

    def build_data(self, data: ImageDataConfig, *, seed: int, assets: Path,
                   subset: SubsetConfig | None = None) -> DataBundle:
        from .data import build_data

        notes: list[str] = []
        chosen: list[str] = []
        bundle = build_data(data, seed, subset, notes, chosen)
        for line in notes:
            print(line, file=sys.stderr, flush=True)
        # A model built from this very info is a run trained now (the trainer's): build_model says what was chosen
        # with the depth, and gives it the current default edges (a checkpoint's info comes from its JSON instead).
        self._fresh = (bundle.info, chosen)
        return bundle

    def build_model(self, model: ImageModelConfig, info: dict, *, assets: Path) -> VAE:
        from .data import default_depth
        from .nets import ImageDecoder, ImageEncoder, condition_embedding

        if model.likelihood == "discretized_logistic_rgb" and info["channels"] != 3:
            raise RecipeError(f"model.likelihood: discretized_logistic_rgb needs 3-channel images, these have "
                              f"{info['channels']}; use discretized_logistic")
        fresh_info, chosen = getattr(self, "_fresh", (None, []))
        new_run = info is fresh_info
        chosen = list(chosen) if new_run else []
        if new_run:
            self._fresh = (None, [])
        if model.edges is None:  # recorded in the run's recipe.yaml and checkpoints, so it is unset only in older ones
            model.edges = "replicate" if new_run else "zeros"
        if model.depth is None:  # follow the images; recorded in the run's recipe.yaml
            model.depth = default_depth(info["size"])
            bottom = info["size"] // 2**model.depth
            chosen.append(f"model.depth {model.depth} (halvings of {info['size']} px down to {bottom}x{bottom})")
        if chosen and new_run:
            print(f"vaekit: note: chose {', '.join(chosen)}; set them in the recipe to choose otherwise",
                  file=sys.stderr, flush=True)
        if info["size"] % 2**model.depth:
            raise RecipeError(f"model.depth: {info['size']}-pixel images cannot be halved {model.depth} times "
                              f"(size must be divisible by 2**depth = {2**model.depth})")
        prior = None
        if model.conditional_prior:
            if info["condition"] == "none":
                raise RecipeError("model.conditional_prior: needs a conditional model "
                                  "(data.condition: label or lowres)")
            prior = LearnedConditionalPrior(model.latent_dim, condition_embedding(model, info))
        if model.latent_shape == "spatial":
            if info["condition"] != "none" or model.latent_channels < 1:
                raise RecipeError("model.latent_shape: spatial needs an unconditional model (data.condition: none) "
                                  "and model.latent_channels >= 1")
            bottom = info["size"] // 2**model.depth
            shape = (model.latent_channels, bottom, bottom)
            return VAE(ImageEncoder(model, info), ImageDecoder(model, info), math.prod(shape), latent_shape=shape)
        return VAE(ImageEncoder(model, info), ImageDecoder(model, info), model.latent_dim, prior=prior)

    # -- CLI verbs ---------------------------------------------------------------------------------
    def add_arguments(self, verb: str, parser) -> None:
        if verb == "sample":
            parser.add_argument("--per-class", type=at_least(1), default=None, metavar="K",
                                help="K samples per class of a label CVAE (a row each in the grid; K images per "
                                     "class folder with --format folder)")
            parser.add_argument("--format", choices=["grid", "folder"], default="grid",
                                help="grid: one samples.png; folder: OUT/<class>/NNNNN.png for torchvision ImageFolder")
        if verb in ("sample", "reconstruct", "interpolate", "traverse"):
            parser.add_argument("--mode", choices=["mean", "sample"], default="mean",
                                help="decode to the likelihood's mean (default) or draw pixels from it")
        if verb in ("interpolate", "traverse"):  # reconstruct's --condition is the engine's
            parser.add_argument("--condition", help="class (name or index) for a label-conditioned model")
        if verb in ("reconstruct", "interpolate", "traverse"):
            parser.add_argument("--label", dest="condition", action=renamed_option("--condition"),
                                help=argparse.SUPPRESS)
        if verb == "reconstruct":
            parser.add_argument("--source", help="label CVAE: the inputs' own class; they are encoded under it and "
                                                 "decoded under --condition (class transfer), as speech's --source")
            parser.add_argument("--from-label", dest="source", action=renamed_option("--source"),
                                help=argparse.SUPPRESS)
        if verb == "eval":
            parser.add_argument("--classifier-samples", type=at_least(0), default=100,
                                help="CVAE: conditional samples per class judged by the classifier (default 100)")
            parser.add_argument("--classifier-examples", type=at_least(1), default=10000,
                                help="CVAE: training images the classifier learns from, once per run (default 10000)")
            parser.add_argument("--classifier-epochs", type=at_least(1), default=2,
                                help="CVAE: passes of the classifier over those images (default 2); eval prints its "
                                     "accuracy on real images and warns when it is too weak to judge")

    def parse_condition(self, text: str, model: VAE) -> Tensor:
        return artifacts.parse_condition(text, model)

    def condition_choices(self, model: VAE) -> list[str]:
        """A label CVAE's class names (a super-resolution model's condition is an image, not a choice)."""
        info = artifacts.model_info(model)
        return artifacts.class_names(info) if info["condition"] == "label" else []

    def demo_verbs(self, model: VAE) -> list[str]:
        """inpaint for every model; superres for a model conditioned on low-resolution images."""
        return ["inpaint"] + (["superres"] if artifacts.model_info(model)["condition"] == "lowres" else [])

    def sample(self, model, n, condition, out_dir, per_class: int | None = None, format: str = "grid",
               temperature: float = 1.0, mode: str = "mean", **options):
        per_class = per_class or 0  # 0: the count follows -n
        if per_class and artifacts.model_info(model)["condition"] == "none":
            raise PluginError(f"--per-class {per_class}: this image model is unconditional (no classes); "
                              "use -n for the number of samples")
        return artifacts.sample(model, n, condition, Path(out_dir), per_class=per_class, format=format,
                                temperature=temperature, mode=mode)

    def reconstruct(self, model, inputs, condition, out_dir, mode: str = "mean", source: str | None = None,
                    **options):
        return artifacts.reconstruct(model, list(inputs), condition, Path(out_dir), mode=mode, source=source)

    def interpolate(self, model, a, b, out_dir, steps: int = 8, method: str = "linear",
                    condition: str | None = None, mode: str = "mean", **options):
        return artifacts.interpolate(model, a, b, Path(out_dir), steps=steps, method=method, condition=condition,
                                     mode=mode)

    def traverse(self, model, out_dir, input=None, dims=None, span: float = 3.0, steps: int = 9,
                 condition: str | None = None, mode: str = "mean", **options):
        example = None if input is not None else self._data_example(model, condition)
        return artifacts.traverse(model, Path(out_dir), input=input, dims=dims, span=span, steps=steps,
                                  condition=condition, mode=mode, example=example)

    def _data_example(self, model, condition: str | None) -> tuple[Tensor, Tensor | None] | None:
        """The first test image of the run's data (of class `condition` for a label CVAE) and its condition, as
        traverse's base point; None, saying so in one line, when the run's recipe or data cannot give one."""
        import torch

        run_dir = run_dir_of(model)
        recipe_file = run_dir / "recipe.yaml" if run_dir is not None else None
        info = artifacts.model_info(model)
        label = artifacts.parse_label(condition, info) if condition is not None and info["condition"] == "label" \
            else None
        try:
            if recipe_file is None or not recipe_file.is_file():
                raise FileNotFoundError("no recipe.yaml beside the model")
            data = build_recipe_data(self, self._recipe(recipe_file), Path(model.config["assets_dir"]))
        except (RecipeError, PluginError, ValueError, OSError) as exc:
            if info["condition"] != "lowres":  # a super-resolution model has no prior mean: traverse says so
                print(f"vaekit: note: traverse starts from the prior mean: no image of the run's data to start from "
                      f"({str(exc).splitlines()[0]}); give --input IMAGE", file=sys.stderr)
            return None
        for split_name in ("test", "val", "train"):
            split = getattr(data, split_name)
            for index in range(len(split) if split is not None else 0):
                item = split[index]
                if label is not None and int(item["c"]) != label:
                    continue
                c = item.get("c")
                x = split.pixels(index) if hasattr(split, "pixels") else item["x"]  # before any random binarization
                print(f"vaekit: note: traverse starts from {split_name} image {index} of the run's data"
                      f"{self._class_words(item, info)}; --input IMAGE starts from another", file=sys.stderr)
                return x[None], None if c is None else (c[None] if c.dim() else torch.tensor([int(c)]))
        print(f"vaekit: note: traverse starts from the prior mean: the run's data has no image of class {condition}",
              file=sys.stderr)
        return None

    @staticmethod
    def _class_words(item: dict, info: dict) -> str:
        """' (class NAME)' for an item of a labelled data set, else ''."""
        label = item.get("c") if info["condition"] == "label" else item.get("label")
        if label is None or not info["class_names"]:
            return ""
        return f" (class {artifacts.class_names(info)[int(label)]})"

    def load_inputs(self, model, inputs):
        """Image files -> pixels [B, C, H, W] at the model's size (`vaekit encode`)."""
        return artifacts._inputs(model, list(inputs))

    def commands(self):
        return {
            "inpaint": (_inpaint_arguments, _run_inpaint),
            "superres": (_superres_arguments, _run_superres),
        }

    # -- metrics -----------------------------------------------------------------------------------
    def eval_metrics(self, model, loader, summary, classifier_samples: int = 100, classifier_examples: int = 10000,
                     classifier_epochs: int = 2, **options):
        """bits/dim (from the IW NLL and from the ELBO), reconstruction MSE, and a CVAE's sample quality."""
        from vaekit.plugin_api import report_classifier

        from .metrics import bits_per_dim, classifier_scores, image_classifier, reconstruction_mse, sample_quality

        info, likelihood = artifacts.model_info(model), model.decoder.likelihood_name
        results = {"elbo_bits_per_dim": bits_per_dim(-summary["elbo"], info, likelihood)}
        if "nll" in summary:
            results["bits_per_dim"] = bits_per_dim(summary["nll"], info, likelihood)
        results["reconstruction_mse"] = reconstruction_mse(model, loader)
        if info["condition"] == "label" and classifier_samples > 0:
            run_dir = run_dir_of(model)
            recipe_file = run_dir / "recipe.yaml" if run_dir is not None else None
            if recipe_file is None or not recipe_file.is_file():
                warnings.warn("no recipe.yaml beside the model: skipping the classifier metrics", stacklevel=2)
                return results
            recipe = self._recipe(recipe_file)
            settings = {"data": dataclasses.asdict(recipe.data), "seed": recipe.seed}
            train = lambda: build_recipe_data(self, recipe, Path(model.config["assets_dir"])).train
            classifier = image_classifier(info, train, settings, run_dir, examples=classifier_examples,
                                          epochs=classifier_epochs, device=model.device)
            quality = sample_quality(model, classifier, loader, classifier_samples)
            report_classifier(f"image classifier ({classifier_epochs} epochs on up to {classifier_examples:,} "
                              "training images)", quality["classifier_accuracy_real"], classifier_scores(quality),
                              examples=quality["classifier_real_examples"],
                              remedy=f"train it longer (--classifier-epochs {max(10, 2 * classifier_epochs)}) or "
                                     "on more images (--classifier-examples)")
            results.update(quality)
        return results

    @staticmethod
    def _recipe(recipe_file: Path):
        """The run's saved recipe, parsed (for rebuilding its training set)."""
        from vaekit.plugin_api import expand_env, parse_recipe, read_yaml

        return parse_recipe(expand_env(read_yaml(recipe_file)), str(recipe_file))


# -- extra verbs: `vaekit traverse RUN`, `vaekit inpaint RUN IMAGE`, `vaekit superres RUN IMAGE...` ----

def _out_argument(parser, verb: str) -> None:
    parser.add_argument("-o", "--out-dir", type=Path, help=f"output folder (default: RUN/outputs/{verb})")


def _out_dir(args, verb: str) -> Path:
    return args.out_dir or Path(args.run) / "outputs" / verb


def renamed_option(new: str) -> type[argparse.Action]:
    """An argparse action for an option's former name: stores its value and says the new name in one line."""

    class Renamed(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"vaekit: note: {option_string} is now {new}, as in every plugin", file=sys.stderr, flush=True)
            setattr(namespace, self.dest, values)

    return Renamed


def _inpaint_arguments(parser) -> None:
    _out_argument(parser, "inpaint")
    parser.add_argument("image", help="image file to complete (resized to the model's size)")
    parser.add_argument("--box", help="region to fill as x0,y0,x1,y1 in model-size pixels (x1, y1 exclusive)")
    parser.add_argument("--mask", metavar="MASK.png", help="mask image: white (> 127) marks the region to fill")
    parser.add_argument("--iterations", type=at_least(1), default=50,
                        help="optimiser steps fitting the latent to the known pixels (default 50)")
    parser.add_argument("--condition", help="class (name or index) for a label-conditioned model")
    parser.add_argument("--label", dest="condition", action=renamed_option("--condition"), help=argparse.SUPPRESS)


def _run_inpaint(model, plugin, args) -> list[Path]:
    """Fill a masked region of an image with the decoded latent that fits its known pixels (inpaint.png)."""
    return artifacts.inpaint(model, args.image, _out_dir(args, "inpaint"), box=args.box, mask=args.mask,
                             iterations=args.iterations, condition=args.condition)


def _superres_arguments(parser) -> None:
    _out_argument(parser, "superres")
    parser.add_argument("inputs", nargs="+", help="low-resolution image files to upscale")
    parser.add_argument("--samples", type=at_least(1), default=4, help="outputs per input in superres.png (default 4)")
    parser.add_argument("--temperature", type=at_least(0, kind=float), default=1.0,
                        help="scale of the spread of the latents drawn (default 1; 0: the prior's mean)")


def _run_superres(model, plugin, args) -> list[Path]:
    """Upscale low-resolution images with a model conditioned on data.condition: lowres (superres.png)."""
    return artifacts.superres(model, args.inputs, _out_dir(args, "superres"), samples=args.samples,
                              temperature=args.temperature)
