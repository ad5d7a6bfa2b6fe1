"""The plugin's build_data: each split's items ({"x": [C, H, W] in [0, 1]}, "c" if conditioned), from any source."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from vaekit import DataBundle, RecipeError
from vaekit.plugin_api import SPLITS, SubsetConfig, pick

from .config import ImageDataConfig
from .folders import (
    UNLABELLED_FOLDER,
    build_folder,
    build_train_test_folder,
    data_notes,
    folder_geometry,
    has_train_test,
    list_image_files,
)
from .mnist import build_mnist
from .pixels import PixelDataset, resize_uint8, static_binarize
from .shapes import SHAPE_FACTORS, SHAPE_NAMES, ShapesDataset


def default_depth(size: int) -> int:
    """Stride-2 stages for size: the most halvings (up to 4) that leave a whole map of at least 4 pixels."""
    depth = 0
    while depth < 4 and size % 2 ** (depth + 1) == 0 and size // 2 ** (depth + 1) >= 4:
        depth += 1
    return max(depth, 1)


def default_geometry(cfg: ImageDataConfig) -> tuple[int, int, list[str]]:
    """(size, channels) from the recipe, else the data set's native ones or (folder) the images' own; and words
    for each value read from a folder's images ("size 64 (...)"), for the run's one line about what it chose."""
    why: dict[str, str] = {}
    if cfg.name == "folder" and (cfg.size is None or cfg.channels is None):
        root = Path(cfg.root)
        if not root.is_dir():
            raise RecipeError(f"data.root: {root} is not a folder of images")
        size, channels, why = folder_geometry(list_image_files(root / "train" if has_train_test(cfg.root) else root)[0])
    else:
        size, channels = {"shapes": 32, "mnist": 28, "folder": 64}[cfg.name], 1 if cfg.name != "folder" else 3
    chosen = [f"data.{key} {value} ({why[key]})" for key, value, given in
              (("size", size, cfg.size), ("channels", channels, cfg.channels)) if given is None and key in why]
    size, channels = cfg.size or size, cfg.channels or channels
    if cfg.name in ("shapes", "mnist") and channels != 1:
        raise RecipeError(f"data.channels: {cfg.name} images have 1 channel, got {channels}")
    return size, channels, chosen


def build_data(cfg: ImageDataConfig, seed: int, subset: SubsetConfig | None = None,
               notes: list[str] | None = None, chosen: list[str] | None = None) -> DataBundle:
    """Datasets for the recipe's data section (each split cut to the subset), and the facts (size, channels,
    classes) the model needs. notes gets data_notes' lines; chosen, the geometry read from a folder's images."""
    size, channels, read = default_geometry(cfg)
    if chosen is not None:
        chosen.extend(read)
    seen: list[tuple] = []
    skipped: list[str] = []  # "path: reason" for each unreadable file left out (data.skip_bad_files)
    cfg.size, cfg.channels = size, channels  # what the run chose is written into its resolved recipe.yaml
    info = {"dataset": cfg.name, "size": size, "channels": channels, "condition": cfg.condition,
            "class_names": [], "lowres_factor": cfg.lowres_factor,
            "lowres_size": math.ceil(size / cfg.lowres_factor)}
    if cfg.name == "shapes":
        make = lambda n, split: ShapesDataset(pick(range(n), subset, seed, SPLITS[split]), seed, split, size,
                                              cfg.condition, cfg.lowres_factor)
        train, val, test = make(cfg.num_train, 0), make(cfg.num_val, 1), make(cfg.num_test, 2)
        info.update(class_names=list(SHAPE_NAMES), binarized=True, factor_names=list(SHAPE_FACTORS))
    else:
        if cfg.name == "mnist":
            splits, class_names = build_mnist(cfg, seed)
        elif has_train_test(cfg.root):
            splits, class_names, skipped = build_train_test_folder(cfg, seed, size, channels, seen)
        else:
            splits, class_names, skipped = build_folder(cfg, seed, size, channels, seen)
        if notes is not None:
            notes.extend(data_notes(seen, size, channels))
        binarize = cfg.binarize if cfg.binarize != "auto" else ("dynamic" if cfg.name == "mnist" else "none")
        if cfg.dequantize and binarize != "none":
            raise RecipeError("data.dequantize: only for 8-bit data; set data.binarize: none")
        datasets = {}
        for name, (images, labels) in splits.items():
            kept = pick(range(len(images)), subset, seed, name)
            if len(kept) < len(images):
                images, labels = images[kept], labels[kept]
            images = resize_uint8(images, size)
            if binarize == "static":  # a different fixed draw per split, the same in every run of this seed
                images = static_binarize(images, seed * 3 + SPLITS.index(name))
            datasets[name] = PixelDataset(images, labels, binarize=binarize if binarize == "dynamic" else "none",
                                          dequantize=cfg.dequantize,
                                          condition=cfg.condition, lowres_factor=cfg.lowres_factor)
        train, val, test = datasets["train"], datasets["val"], datasets["test"]
        info.update(class_names=class_names, binarized=binarize != "none")
        if cfg.condition == "label" and not class_names:
            raise RecipeError(f"data.condition: label needs class subfolders in {cfg.root}")
        if cfg.condition == "label" and any(bool((labels < 0).any()) for _, labels in splits.values()):
            raise RecipeError(f"data.condition: label needs a class for every image; {cfg.root}/{UNLABELLED_FOLDER} "
                              "holds images without one")
    info["num_classes"] = len(info["class_names"])
    if cfg.condition == "lowres":
        # A few low-res conditions travel with the model so `sample` without --condition has something to upscale.
        examples = torch.stack([val[i]["c"] for i in range(min(8, len(val)))])
        info["example_conditions"] = examples.round(decimals=4).tolist()
    return DataBundle(train=train, val=val, test=test, info=info, skipped=skipped)
