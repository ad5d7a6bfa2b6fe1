"""Folders of image files: listing, decoding and splitting them, and the size and notes read from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaekit import RecipeError
from vaekit.plugin_api import name_files

from .config import ImageDataConfig
from .images import IMAGE_EXTENSIONS, ImageFileError, load_image
from .pixels import ImageDataError

UNLABELLED_FOLDER = "unlabelled"  # a subfolder of images without a class

def list_image_files(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files under root: with class subfolders (ImageFolder layout) labelled by folder, else unlabelled.

    Images directly in root beside class subfolders would have no class: that is an error naming them,
    never a silent drop. A subfolder named `unlabelled` is no class: its images get label -1 (examples without
    a label, for semi-supervised runs).
    """
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    class_dirs = [d for d in subfolders if d.name != UNLABELLED_FOLDER
                  and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.rglob("*"))]
    unlabelled = sorted(f for f in (root / UNLABELLED_FOLDER).rglob("*") if f.is_file()
                        and f.suffix.lower() in IMAGE_EXTENSIONS) if (root / UNLABELLED_FOLDER).is_dir() else []
    top = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if class_dirs and top:
        raise RecipeError(f"data.root: {root} holds {len(top)} image file(s) ({name_files([f.name for f in top])}) "
                          f"beside class subfolders ({name_files([d.name for d in class_dirs])}); move them into "
                          "a class folder, or point data.root at a folder of images only")
    if class_dirs:
        files, labels = [], []
        for label, folder in enumerate(class_dirs):
            found = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            files += found
            labels += [label] * len(found)
        return files + unlabelled, labels + [-1] * len(unlabelled), [d.name for d in class_dirs]
    return top + unlabelled, [0] * len(top) + [-1] * len(unlabelled), []


def build_folder(cfg: ImageDataConfig, seed: int, size: int, channels: int, seen: list | None = None):
    """Decode every image once (resized, centre-cropped) and split train / val / test by a seeded shuffle.

    seen, where given, gets (path, width, height, mode) of every image read (see data_notes).
    """
    root = Path(cfg.root)
    if not root.is_dir():
        raise RecipeError(f"data.root: {root} is not a folder of images")
    files, labels, class_names = list_image_files(root)
    if not files:
        raise RecipeError(f"data.root: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
    images, kept, bad = [], [], []
    for path, label in zip(files, labels, strict=True):
        try:
            images.append(load_image(path, size, channels, seen=seen))
            kept.append(label)
        except ImageFileError as exc:
            if not cfg.skip_bad_files:
                raise ImageDataError(f"{exc}; fix or remove it, or set data.skip_bad_files: true") from None
            bad.append(str(exc))
    if not images:
        raise ImageDataError(f"{root}: none of the {len(files)} image files could be read")
    images_t, labels_t = torch.stack(images), torch.tensor(kept)
    order = torch.randperm(len(images_t), generator=torch.Generator().manual_seed(seed))
    n_eval = int(round(cfg.val_fraction * len(order)))
    if len(order) - 2 * n_eval < 1:
        raise RecipeError(f"data.val_fraction: {cfg.val_fraction} leaves no training images out of {len(order)}")
    parts = {"val": order[:n_eval], "test": order[n_eval:2 * n_eval], "train": order[2 * n_eval:]}
    splits = {name: (images_t[idx], labels_t[idx]) for name, idx in parts.items()}
    return splits, class_names, bad


def build_train_test_folder(cfg: ImageDataConfig, seed: int, size: int, channels: int, seen: list | None = None):
    """root/train and root/test (ImageFolder each, as CIFAR-10's): test is all of test/, val a share of train/;
    also the files left out of either."""
    import dataclasses

    root = Path(cfg.root)
    splits, class_names, skipped = build_folder(dataclasses.replace(cfg, root=str(root / "train")), seed, size,
                                                channels, seen)
    test, test_names, skipped_test = build_folder(dataclasses.replace(cfg, root=str(root / "test"), val_fraction=0.0),
                                                  seed, size, channels, seen)
    if test_names != class_names:
        raise RecipeError(f"data.root: {root}/test has classes {test_names}, {root}/train has {class_names}")
    # build_folder held back a second val-sized share of train/ as its test split: train on it instead.
    splits["train"] = tuple(torch.cat([a, b]) for a, b in zip(splits["train"], splits["test"], strict=True))
    splits["test"] = test["train"]
    return splits, class_names, skipped + skipped_test


def has_train_test(root: str | None) -> bool:
    """Whether a folder data set comes already split into root/train and root/test."""
    return root is not None and (Path(root) / "train").is_dir() and (Path(root) / "test").is_dir()


GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")  # Pillow modes with one colour channel
MAX_INFERRED_SIZE = 64  # a CPU-sized default; set data.size for larger images


def folder_geometry(files: list[Path]) -> tuple[int, int, dict[str, str]]:
    """(size, channels) read from image headers: the median shorter side made halvable, 1 if all are grayscale;
    and for each, the words saying why (for the run's one line about what it chose)."""
    from PIL import Image

    sides, grey = [], 0
    for path in files:
        try:
            with Image.open(path) as image:  # reads the header only
                sides.append(min(image.size))
                grey += image.mode in GRAYSCALE_MODES
        except (OSError, SyntaxError, ValueError):
            continue  # unreadable files are reported (or skipped) when the images are decoded
    if not sides:
        return MAX_INFERRED_SIZE, 3, {"size": "no readable image header", "channels": "no readable image header"}
    median = int(np.median(sides))
    size = halvable_size(median)
    if size == median:
        size_why = "the images' median shorter side"
    else:
        size_why = f"from the images' median shorter side, {median} px, " + (
            f"capped at {MAX_INFERRED_SIZE}" if median > MAX_INFERRED_SIZE else "rounded down so it halves")
    channels_why = f"all {len(sides)} images are greyscale" if grey == len(sides) else \
        f"all {len(sides)} images are colour" if grey == 0 else f"{len(sides) - grey} of {len(sides)} images are colour"
    return size, 1 if grey == len(sides) else 3, {"size": size_why, "channels": channels_why}


def halvable_size(side: int) -> int:
    """A common side length capped at MAX_INFERRED_SIZE, rounded down (no upsampling) to a multiple of 4 (of 8
    from 32 up), at least 8."""
    side = min(side, MAX_INFERRED_SIZE)
    step = 8 if side >= 32 else 4
    return max(8, side // step * step)



ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def data_notes(seen: list[tuple], size: int, channels: int) -> list[str]:
    """One line each (for stderr) about images the run changes beyond resizing: ones smaller than size (upscaled),
    greyscale ones converted to RGB beside colour ones, and ones whose transparency is dropped."""
    notes, total = [], len(seen)

    def some(items: list, plural: str, singular: str) -> str:
        return f"{len(items)} of {total} images {plural if len(items) > 1 else singular}"

    small = [item for item in seen if min(item[1], item[2]) < size]
    if small:
        path, width, height, _ = min(small, key=lambda item: (min(item[1], item[2]), item[1] * item[2]))
        notes.append(f"vaekit: note: data: {some(small, 'are', 'is')} smaller than {size}x{size} and upscaled "
                     f"({'the smallest, ' if len(small) > 1 else ''}{Path(path).name}, from {width}x{height}); "
                     "remove them or set data.size")
    grey = [item for item in seen if item[3] in GRAYSCALE_MODES]
    if channels == 3 and grey:
        notes.append(f"vaekit: note: data: {some(grey, 'are', 'is')} greyscale (e.g. {Path(grey[0][0]).name}) "
                     "and converted to RGB to go with the colour ones; data.channels: 1 trains on grey instead")
    alpha = [item for item in seen if item[3] in ALPHA_MODES]
    if alpha:
        notes.append(f"vaekit: note: data: {some(alpha, 'have', 'has')} transparency (e.g. "
                     f"{Path(alpha[0][0]).name}), which is dropped: transparent pixels show the colour stored under "
                     "them (often black)")
    return notes
