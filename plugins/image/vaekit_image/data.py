"""Image data sets: procedural shapes, MNIST from its IDX gzip files, and folders of image files.

Every item is {"x": floats in [0, 1] [C, H, W]} plus "c" (a class label, or the image
average-pooled by lowres_factor) when the recipe asks for a condition. Random binarization and
dequantization use torch's global RNG so that the trainer's saved RNG state replays them.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from vaekit import DataBundle, RecipeError
from vaekit.plugin_api import SPLITS, SubsetConfig, name_files, pick

from .config import ImageDataConfig
from .images import IMAGE_EXTENSIONS, ImageFileError, load_image

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
SHAPE_NAMES = ["square", "ellipse", "heart"]
SHAPE_FACTORS = {"shape": 3, "scale": 6, "rotation": 40, "x": 32, "y": 32}  # dSprites' factor sizes


class ImageDataError(ImageFileError):
    """A data file (IDX, image) that cannot be used; the message names the file."""


# -- the dataset every source ends up in ---------------------------------------------------------

class PixelDataset(Dataset):
    """uint8 images [N, C, H, W] (+ labels) served as floats in [0, 1] with the recipe's binarization."""

    def __init__(self, images: Tensor, labels: Tensor | None, *, binarize: str = "none", dequantize: bool = False,
                 condition: str = "none", lowres_factor: int = 4):
        self.images, self.labels = images, labels
        self.binarize, self.dequantize = binarize, dequantize
        self.condition, self.lowres_factor = condition, lowres_factor

    def __len__(self) -> int:
        return self.images.shape[0]

    def pixels(self, index: int) -> Tensor:
        """The image before any random binarization: [C, H, W] in [0, 1]."""
        return self.images[index].float() / 255.0

    def __getitem__(self, index: int) -> dict:
        grey = self.pixels(index)
        if self.binarize == "dynamic":
            x = torch.bernoulli(grey)
        elif self.dequantize:
            x = (self.images[index].float() + torch.rand(grey.shape)) / 256.0
        else:
            x = grey
        item = {"x": x}
        if self.labels is not None:  # the class, for `vaekit encode --split` maps (the model never sees it)
            item["label"] = self.labels[index].long()
        if self.condition == "label":
            item["c"] = self.labels[index].long()
        elif self.condition == "lowres":
            item["c"] = lowres(grey[None], self.lowres_factor)[0]
        return item


def lowres(pixels: Tensor, factor: int) -> Tensor:
    """The super-resolution condition: pixels [B, C, H, W] average-pooled by factor (ceil mode)."""
    return F.avg_pool2d(pixels, factor, ceil_mode=True)


def static_binarize(images: Tensor, seed: int) -> Tensor:
    """One fixed Bernoulli draw per pixel from a generator seeded by the recipe: uint8 in {0, 255}."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.bernoulli(images.float() / 255.0, generator=generator) * 255).to(torch.uint8)


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Resize uint8 images [N, C, h, w] to size x size (antialiased bilinear)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


# -- shapes: dSprites-like, generated from (seed, split, index) ----------------------------------

class ShapesDataset(Dataset):
    """Procedural white shapes on black: factors shape, scale, rotation, x, y drawn from (seed, split, index).

    Every image is drawn once, all together, when the data set is made (uint8, 1 KiB per item at 32x32), so a
    training step only indexes a tensor instead of drawing 64 shapes in Python.
    """

    def __init__(self, indices: list[int], seed: int, split: int, size: int = 32, condition: str = "none",
                 lowres_factor: int = 4):
        self.indices, self.seed, self.split, self.size = indices, seed, split, size  # item i draws from indices[i]
        self.condition, self.lowres_factor = condition, lowres_factor
        coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
        self.grid_y, self.grid_x = torch.meshgrid(coords, coords, indexing="ij")
        self.levels = torch.tensor([self._draw(i) for i in indices], dtype=torch.long).reshape(len(indices), 5)
        self.images = torch.cat([self._render_levels(chunk) for chunk in self.levels.split(256)]) \
            if len(indices) else torch.zeros(0, 1, size, size, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.indices)

    def _draw(self, source_index: int) -> list[int]:
        """The factor levels of generated example source_index, from its own seeded generator."""
        rng = np.random.default_rng([self.seed, self.split, source_index])
        return [int(rng.integers(n)) for n in SHAPE_FACTORS.values()]

    def factors(self, index: int) -> dict[str, int]:
        """The generating factors of item index as level indices (dSprites' sizes: 3, 6, 40, 32, 32)."""
        return dict(zip(SHAPE_FACTORS, self.levels[index].tolist(), strict=True))

    def render(self, factors: dict[str, int]) -> Tensor:
        """A binary image [1, size, size] of the shape with the given factor levels."""
        levels = torch.tensor([[factors[name] for name in SHAPE_FACTORS]])
        return self._render_levels(levels)[0].float() / 255.0

    def _render_levels(self, levels: Tensor) -> Tensor:
        """uint8 images [N, 1, size, size] in {0, 255} for factor levels [N, 5] (columns in SHAPE_FACTORS' order)."""
        shape_level, scale_level, rotation, x, y = (levels[:, k, None, None].double() for k in range(5))
        scale = 0.5 + 0.5 * scale_level / (SHAPE_FACTORS["scale"] - 1)
        angle = 2 * math.pi * rotation / SHAPE_FACTORS["rotation"]
        cx = -0.45 + 0.9 * x / (SHAPE_FACTORS["x"] - 1)
        cy = -0.45 + 0.9 * y / (SHAPE_FACTORS["y"] - 1)
        radius = 0.7 * scale  # in half-image units: 5 to 11 pixels at 32x32, big enough to tell shapes apart
        dx, dy = self.grid_x - cx, self.grid_y - cy
        u = (torch.cos(angle) * dx + torch.sin(angle) * dy) / radius
        v = (-torch.sin(angle) * dx + torch.cos(angle) * dy) / radius
        inside = torch.zeros(u.shape, dtype=torch.bool)
        for level, name in enumerate(SHAPE_NAMES):  # each image evaluates its own shape's inequality only
            rows = (levels[:, 0] == level).nonzero()[:, 0]
            inside[rows] = shape_mask(name, u[rows], v[rows])
        return (inside.to(torch.uint8) * 255)[:, None]

    def __getitem__(self, index: int) -> dict:
        x = self.images[index].float() / 255.0
        shape = self.levels[index, 0]
        item = {"x": x, "label": shape}  # for `vaekit encode --split` maps
        if self.condition == "label":
            item["c"] = shape
        elif self.condition == "lowres":
            item["c"] = lowres(x[None], self.lowres_factor)[0]
        return item


def shape_mask(name: str, u: Tensor, v: Tensor) -> Tensor:
    """Which points (u, v), in units of the shape's radius around its centre, lie inside the named shape."""
    if name == "square":
        return torch.maximum(u.abs(), v.abs()) <= 0.7
    if name == "ellipse":
        return u**2 + (v / 0.55) ** 2 <= 1.0
    hx, hy = u * 1.15, -v * 1.15 + 0.1  # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, pointing down in the image
    return (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0


# -- MNIST from the four IDX gzip files ----------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip) as a uint8 array; truncated or malformed files raise ImageDataError naming path."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ImageDataError(f"{path}: not a readable gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ImageDataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ImageDataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ImageDataError(f"{path}: truncated or padded: header says {expected} values, file has "
                             f"{len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def mnist_files(cfg: ImageDataConfig) -> dict[str, Path]:
    """The four IDX paths under data.root (downloading them with torchvision first if data.download)."""
    root = Path(cfg.root)
    paths = {key: root / name for key, name in MNIST_FILES.items()}
    if cfg.download and not all(p.is_file() for p in paths.values()):
        from torchvision.datasets import MNIST  # online users only: never used by tests or default recipes

        MNIST(str(root), train=True, download=True)
        paths = {key: root / "MNIST" / "raw" / name for key, name in MNIST_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise RecipeError(f"data.root: {path} not found; expected the four MNIST IDX gzip files "
                              f"({', '.join(MNIST_FILES.values())}) in {root}")
    return paths


def build_mnist(cfg: ImageDataConfig, seed: int):
    """Train / val (last val_size of the 60k) / test (10k) as uint8 tensors and labels."""
    paths = mnist_files(cfg)
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise ImageDataError(f"{paths[split + '_labels']}: {n_lab} labels for {n_img} images")
    train_images = torch.from_numpy(arrays["train_images"].copy())[:, None]
    test_images = torch.from_numpy(arrays["test_images"].copy())[:, None]
    train_labels = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    test_labels = torch.from_numpy(arrays["test_labels"].astype(np.int64))
    if not 0 < cfg.val_size < len(train_images):
        raise RecipeError(f"data.val_size: expected 1 to {len(train_images) - 1}, got {cfg.val_size}")
    cut = len(train_images) - cfg.val_size
    splits = {
        "train": (train_images[:cut], train_labels[:cut]),
        "val": (train_images[cut:], train_labels[cut:]),
        "test": (test_images, test_labels),
    }
    return splits, [str(d) for d in range(10)]


# -- a folder of image files ---------------------------------------------------------------------

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


# -- the plugin's build_data ---------------------------------------------------------------------

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
