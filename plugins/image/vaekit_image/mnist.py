"""MNIST from its four IDX gzip files: train / val / test uint8 images and labels."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from vaekit import RecipeError

from .config import ImageDataConfig
from .pixels import ImageDataError

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


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
