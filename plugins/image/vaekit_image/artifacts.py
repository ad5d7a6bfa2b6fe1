"""What people do with a trained image VAE, each writing PNGs and returning their paths.

sample (grid, one row per class for a CVAE, or an ImageFolder tree), reconstruct, interpolate
(linear or spherical), traverse (one latent dimension per row), inpaint (fill a box or mask,
leaving every other pixel exactly as it was) and superres (upscale low-res images).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from vaekit import VAE, PluginError, latent_path
from vaekit.plugin_api import parse_dims, traversal

from .images import load_image, load_mask, load_pixels, save_grid, save_png
from .pixels import lowres


def model_info(model: VAE) -> dict:
    """The data facts the model was built from (size, channels, condition, class names)."""
    return model.decoder.info


def class_names(info: dict) -> list[str]:
    return info["class_names"] or [str(i) for i in range(info["num_classes"])]


def parse_label(text: str, info: dict) -> int:
    """A class given by name or index -> its index; ValueError listing the valid ones otherwise."""
    names = class_names(info)
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    raise ValueError(f"condition {text!r}: expected a class name or index 0-{len(names) - 1} "
                     f"({', '.join(names[:20])})")


def parse_condition(text: str, model: VAE) -> Tensor:
    """--condition: a class name/index for a label CVAE, a low-res image file for super-resolution: [1, ...]."""
    info = model_info(model)
    if info["condition"] == "label":
        return torch.tensor([parse_label(text, info)], device=model.device)
    if info["condition"] == "lowres":
        image = load_image(text, info["lowres_size"], info["channels"], say_resized=True).float() / 255.0
        return image[None].to(model.device)
    raise PluginError("this image model is unconditional: leave out --condition")


def _label_option(model: VAE, label: str | None, n: int, option: str = "--condition") -> Tensor | None:
    """The condition for verbs that encode images: a label CVAE needs a class (--condition, or `option`)."""
    info = model_info(model)
    if info["condition"] != "label":
        return None
    if label is None:
        raise PluginError(f"this model is conditioned on class labels: give {option} "
                          f"({', '.join(class_names(info))})")
    return torch.full((n,), parse_label(str(label), info), device=model.device, dtype=torch.long)


def _conditions_for(model: VAE, x: Tensor, label: str | None) -> Tensor | None:
    """Condition for encoding the images x: the class `label` for all, their own low-res version, or none."""
    info = model_info(model)
    if info["condition"] == "lowres":
        return lowres(x, info["lowres_factor"])
    return _label_option(model, label, x.shape[0])


def _upscale(c: Tensor, size: int) -> Tensor:
    """A low-res condition blown up (nearest) to the model's size, for showing beside outputs."""
    return F.interpolate(c, size=(size, size), mode="nearest")


def _inputs(model: VAE, paths: list[str]) -> Tensor:
    info = model_info(model)
    return load_pixels(paths, info["size"], info["channels"]).to(model.device)


# -- sample --------------------------------------------------------------------------------------

@torch.no_grad()
def sample(model: VAE, n: int, condition: Tensor | None, out_dir: Path, per_class: int = 0, format: str = "grid",
           temperature: float = 1.0, mode: str = "mean") -> list[Path]:
    """n samples as samples.png; a label CVAE without a condition gets one row per class (per_class each).

    format='folder' writes out_dir/<class name>/NNNNN.png instead (torchvision ImageFolder layout).
    """
    info, out_dir = model_info(model), Path(out_dir)
    if format not in ("grid", "folder"):
        raise ValueError(f"--format: expected grid or folder, got {format!r}")
    rows_show_condition = False
    if info["condition"] == "label" and condition is None:
        per = per_class or max(1, math.ceil(n / info["num_classes"]))
        c = torch.arange(info["num_classes"], device=model.device).repeat_interleave(per)
        nrow = per
    elif info["condition"] == "lowres":
        if condition is None:
            condition = torch.tensor(info["example_conditions"], device=model.device)
        per = per_class or max(1, n // condition.shape[0])
        c = condition.repeat_interleave(per, dim=0)
        nrow, rows_show_condition = per, True
    elif condition is not None:
        per = per_class or n
        c = condition.reshape(-1)[:1].expand(per)
        nrow = math.ceil(math.sqrt(per))
    else:
        per, c = per_class or n, None
        nrow = math.ceil(math.sqrt(per))
    count = c.shape[0] if c is not None else per
    images = model.sample(count, c, temperature=temperature, mode=mode)
    if format == "folder":
        return _write_folder(images, c, info, out_dir)
    if rows_show_condition:  # each row: the low-res condition, then its samples
        shown = _upscale(condition, info["size"])
        images = torch.cat([torch.cat([shown[i:i + 1], images[i * per:(i + 1) * per]])
                            for i in range(condition.shape[0])])
        nrow = per + 1
    return [save_grid(images, out_dir / "samples.png", nrow=nrow)]


def _write_folder(images: Tensor, c: Tensor | None, info: dict, out_dir: Path) -> list[Path]:
    """One PNG per image under out_dir/<class name>/ (all under 'samples' when unlabelled)."""
    names = class_names(info) if info["condition"] == "label" else None
    files = []
    for i, image in enumerate(images):
        folder = names[int(c[i])] if names is not None else "samples"
        files.append(save_png(image, out_dir / folder / f"{i:05d}.png"))
    return files


# -- reconstruct (and class transfer), interpolate -----------------------------------------------

def transfer_latent(model: VAE, z: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """Move latents z encoded under labels `source` to labels `target` (class transfer, "this 3 as a 7").

    With a learned prior p(z|c) the class lives partly in where z sits, so z keeps its place relative to
    the source class's prior (standardised) and is re-expressed in the target's; with p(z) = N(0, I) the
    decoder's label alone carries the class and z is kept as it is.
    """
    if not model.conditional_prior:
        return z
    p_source, p_target = model.prior(source, z.shape[0]), model.prior(target, z.shape[0])
    return p_target.mean + p_target.std * (z - p_source.mean) / p_source.std


@torch.no_grad()
def transfer(model: VAE, x: Tensor, source: Tensor, target: Tensor, mode: str = "mean") -> Tensor:
    """Images x of labels `source` reconstructed as labels `target`: encode under source, decode under target."""
    z = transfer_latent(model, model.posterior(x, source).mean, source, target)
    return model.decode(z, target, mode=mode)



@torch.no_grad()
def reconstruct(model: VAE, inputs: list[str], condition: Tensor | None, out_dir: Path, mode: str = "mean",
                source: str | None = None) -> list[Path]:
    """reconstructions.png: inputs in the first row, reconstructions below (super-res: low-res input on top).

    A label CVAE decodes under `condition` (a class tensor, from --condition); it encodes under `source` (the inputs'
    own class: class transfer), or under the same condition without one.
    """
    info = model_info(model)
    x = _inputs(model, inputs)
    if info["condition"] == "label" and condition is not None:
        c = condition.reshape(-1)[:1].expand(x.shape[0])
    else:
        c = _conditions_for(model, x, None)
    if source is not None and info["condition"] == "label":
        output = transfer(model, x, _label_option(model, source, x.shape[0], "--source"), c, mode=mode)
    else:
        output = model.reconstruct(x, c, mode=mode)
    rows = [x, output]
    if info["condition"] == "lowres":
        rows = [_upscale(c, info["size"]), output, x]
    return [save_grid(torch.cat(rows), Path(out_dir) / "reconstructions.png", nrow=x.shape[0])]


@torch.no_grad()
def interpolate(model: VAE, a: str, b: str, out_dir: Path, steps: int = 8, method: str = "linear",
                condition: str | None = None, mode: str = "mean") -> list[Path]:
    """interpolation.png: input a, `steps` decoded points from a's to b's posterior mean (ends included), input b."""
    x = _inputs(model, [a, b])
    c = _conditions_for(model, x, condition)
    z = model.posterior(x, c).mean
    path = latent_path(z[0], z[1], steps, method)
    if c is None:
        path_c = None
    elif c.dim() == 1:
        path_c = c[:1].expand(steps)
    else:  # low-res conditions move along with the latent
        path_c = latent_path(c[0], c[1], steps)
    decoded = model.decode(path, path_c, mode=mode)
    images = torch.cat([x[:1], decoded, x[1:]])
    return [save_grid(images, Path(out_dir) / "interpolation.png", nrow=steps + 2)]


# -- traverse ------------------------------------------------------------------------------------

@torch.no_grad()
def traverse(model: VAE, out_dir: Path, input: str | None = None, dims: str | list[int] | None = None,
             span: float = 3.0, steps: int = 9, condition: str | None = None, mode: str = "mean",
             example: tuple[Tensor, Tensor | None] | None = None) -> list[Path]:
    """traversal.png: row d moves latent unit d by -span..span around a base point, the others fixed.

    The base point is the posterior mean of `input` (an image file), else of `example` (pixels [1, C, S, S] and
    their condition: a real image of the run's data), else the prior mean; the β-VAE picture, and with an odd
    `steps` the middle column is the base image's reconstruction. dims as --dims or a list.
    """
    info = model_info(model)
    units = parse_dims(dims, model.latent_dim)
    if input is not None or example is not None:
        if input is not None:
            x = _inputs(model, [input])
            c = _conditions_for(model, x, condition)
        else:
            x, c = example[0].to(model.device), example[1]
            c = c.to(model.device) if c is not None else None
        base = model.posterior(x, c).mean[0]
    else:
        if info["condition"] == "lowres":
            raise PluginError("traverse on a super-resolution model needs --input IMAGE")
        c = _label_option(model, condition, 1)
        base = model.prior(c, 1).mean[0]
    z = traversal(base, units, span, steps)  # a spatial latent's units are its flattened coordinates
    path_c = None if c is None else c[:1].expand(z.shape[0], *c.shape[1:])
    images = model.decode(z, path_c, mode=mode)
    return [save_grid(images, Path(out_dir) / "traversal.png", nrow=steps)]


# -- inpaint -------------------------------------------------------------------------------------

def parse_box(text: str, size: int) -> tuple[int, int, int, int]:
    """'x0,y0,x1,y1' in pixels of the model-size image (x1, y1 exclusive)."""
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--box: expected x0,y0,x1,y1 (integers), got {text!r}") from None
    if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
        raise ValueError(f"--box: {text!r} is not a non-empty box inside the {size}x{size} image")
    return x0, y0, x1, y1


def inpaint(model: VAE, image: str, out_dir: Path, box: str | None = None, mask: str | None = None,
            iterations: int = 50, condition: str | None = None) -> list[Path]:
    """Fill the masked region of image; every unmasked pixel is copied unchanged (quality.vae_inpaint).

    Writes inpainted.png (the filled image at the model's size) and inpaint.png (input with the region
    greyed, then the result).
    """
    from .quality import vae_inpaint

    info = model_info(model)
    if (box is None) == (mask is None):
        raise ValueError("inpaint: give exactly one of --box x0,y0,x1,y1 or --mask MASK.png")
    size, channels = info["size"], info["channels"]
    original = load_image(image, size, channels, say_resized=True).to(model.device)  # uint8 [C, S, S]
    if box is not None:
        x0, y0, x1, y1 = parse_box(box, size)
        region = torch.zeros(1, size, size, dtype=torch.bool, device=model.device)
        region[:, y0:y1, x0:x1] = True
    else:
        region = load_mask(mask, size).to(model.device)
    known = original.float()[None] / 255.0
    filled = vae_inpaint(model, known, region, _conditions_for(model, known, condition), max(1, iterations))
    result = torch.where(region, (filled[0] * 255).round().to(torch.uint8), original)
    out_dir = Path(out_dir)
    shown = torch.where(region, torch.full_like(known, 0.5), known)
    return [save_png(result, out_dir / "inpainted.png"),
            save_grid(torch.cat([known, shown, result[None].float() / 255.0]), out_dir / "inpaint.png", nrow=3)]


# -- super-resolution ----------------------------------------------------------------------------

@torch.no_grad()
def superres(model: VAE, inputs: list[str], out_dir: Path, samples: int = 1, temperature: float = 1.0) -> list[Path]:
    """Upscale low-res image files: <name>_x<factor>.png from the prior mean, plus superres.png with draws.

    Each input is read at the model's low-res size; superres.png rows show the input (nearest
    upscaled), the prior-mean output and `samples - 1` draws from p(z|c).
    """
    info = model_info(model)
    if info["condition"] != "lowres":
        raise PluginError("superres needs a model trained with data.condition: lowres "
                          "(see recipes/image/mnist_superres.yaml)")
    c = load_pixels(inputs, info["lowres_size"], info["channels"]).to(model.device)
    prior = model.prior(c, c.shape[0])
    best = model.decode(prior.mean, c)
    out_dir, factor = Path(out_dir), info["lowres_factor"]
    files = [save_png(best[i], out_dir / f"{Path(p).stem}_x{factor}.png") for i, p in enumerate(inputs)]
    rows = [_upscale(c, info["size"]), best]
    for _ in range(max(0, samples - 1)):
        rows.append(model.decode(prior.sample(temperature=temperature), c))
    grid = torch.stack(rows, dim=1).reshape(-1, *best.shape[1:])  # one row per input
    files.append(save_grid(grid, out_dir / "superres.png", nrow=len(rows)))
    return files
