"""Small builders shared by the image plugin's tests (tiny models, real files written to tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vaekit
from vaekit.config.reading import build_dataclass
from vaekit.config.subsets import SubsetConfig
from vaekit.runs import build_model


def plugin():
    return vaekit.get_plugin("image")


def configs(data: dict, model: dict):
    """Typed data and model sections, exactly as a recipe would give them."""
    p = plugin()
    return build_dataclass(p.data_config, data, "data"), build_dataclass(p.model_config, model, "model")


def data_and_model(data: dict, model: dict, tmp_path: Path, train_examples: int | None = None):
    """(DataBundle, VAE) built the way the trainer builds them (train_examples: the recipe's subset.train)."""
    p = plugin()
    data_cfg, model_cfg = configs(data, model)
    bundle = p.build_data(data_cfg, seed=0, assets=tmp_path / "assets", subset=SubsetConfig(train=train_examples))
    return bundle, build_model(p, model_cfg, bundle.info, tmp_path / "assets")


def info(size=28, channels=1, condition="none", num_classes=0, lowres_factor=4) -> dict:
    """The data facts build_model needs, without building any data."""
    out = {"dataset": "test", "size": size, "channels": channels, "condition": condition,
           "class_names": [str(i) for i in range(num_classes)], "num_classes": num_classes,
           "lowres_factor": lowres_factor, "lowres_size": -(-size // lowres_factor), "binarized": True}
    if condition == "lowres":
        out["example_conditions"] = torch.rand(2, channels, out["lowres_size"], out["lowres_size"]).tolist()
    return out


def tiny_model(info_dict: dict, tmp_path: Path, **model):
    """A small untrained model for shape and file checks."""
    p = plugin()
    _, model_cfg = configs({}, {"latent_dim": 4, "width": 8, "hidden": 32, **model})
    return build_model(p, model_cfg, info_dict, tmp_path / "assets").eval()


def write_png(path: Path, size: int, channels: int = 1, seed: int = 0) -> Path:
    """A random uint8 image file of size x size."""
    rng = np.random.default_rng(seed)
    shape = (size, size) if channels == 1 else (size, size, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a file that must open as a PNG."""
    with Image.open(path) as image:
        assert image.format == "PNG", path
        image.load()
        return image.size


def grid_size(n_cols: int, n_rows: int, size: int, padding: int = 2) -> tuple[int, int]:
    """torchvision.utils.save_image's grid size in pixels."""
    return n_cols * (size + padding) + padding, n_rows * (size + padding) + padding
