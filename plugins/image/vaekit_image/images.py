"""Reading image files into pixel tensors and writing PNGs (Pillow and torchvision do the work)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaekit.plugin_api import atomic_open

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class ImageFileError(ValueError):
    """An image file that cannot be read; the message names the file."""


def load_image(path: str | Path, size: int, channels: int, say_resized: bool = False,
               seen: list | None = None) -> Tensor:
    """One image file as uint8 [channels, size, size]: shorter side resized to size, then centre-cropped
    (with say_resized, one line on stderr says so: a user's input to a model, not a training example).

    seen, where given, gets (path, width, height, Pillow mode) of the file as stored, for notes about a data set.
    """
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later inside training
            if seen is not None:
                seen.append((path, *image.size, image.mode))
            image = to_8bit(image).convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageFileError(f"{path}: not a readable image ({exc})") from None
    if image.size != (size, size):
        if say_resized:
            width, height = image.size
            cropped = " and centre-cropped" if width != height else ""
            print(f"{path}: {width}x{height} resized{cropped} to the model's {size}x{size}", file=sys.stderr)
        image = TF.center_crop(TF.resize(image, size, antialias=True), [size, size])
    return TF.pil_to_tensor(image)


def to_8bit(image):
    """A 16-bit or 32-bit greyscale image scaled to 8 bits (Pillow's convert("L") clips it to white instead)."""
    from PIL import Image

    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":  # float images: [0, 1] by convention, else their own 0-255 range
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    else:  # 16-bit PNG/TIFF ("I;16", or "I" holding 0-65535); an "I" that stays within 0-255 is 8-bit data
        scale = 255.0 / 65535.0 if values.size and values.max() > 255 or image.mode.startswith("I;16") else 1.0
    return Image.fromarray(np.clip(np.round(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8), mode="L")


def load_pixels(paths: list[str | Path], size: int, channels: int) -> Tensor:
    """Several image files (a user's inputs: resizing is reported) as floats in [0, 1]: [N, channels, size, size]."""
    return torch.stack([load_image(p, size, channels, say_resized=True) for p in paths]).float() / 255.0


def load_mask(path: str | Path, size: int) -> Tensor:
    """A mask image as bool [1, size, size]: bright pixels (> 127) mark the region to fill."""
    return load_image(path, size, 1) > 127


def save_grid(images: Tensor, path: Path, nrow: int, padding: int = 2) -> Path:
    """Write images [N, C, H, W] in [0, 1] as one PNG grid with nrow images per row."""
    from torchvision.utils import save_image

    with atomic_open(path, "wb") as f:  # never through a link planted in the run folder
        save_image(images.detach().float().clamp(0, 1).cpu(), f, format="png", nrow=nrow, padding=padding,
                   pad_value=1.0)
    return path


def save_png(image: Tensor, path: Path) -> Path:
    """Write one image [C, H, W] (floats in [0, 1], or uint8) as a PNG of exactly H x W pixels."""
    from PIL import Image

    if image.dtype != torch.uint8:
        image = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    array = image.cpu().permute(1, 2, 0).numpy()
    with atomic_open(path, "wb") as f:
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(f, format="PNG")
    return path
