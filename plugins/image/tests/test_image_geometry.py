"""Geometry from the data: a folder's size, channels and the model's depth follow its images when unset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from image_test_helpers import data_and_model
from PIL import Image
from vaekit_image.data import default_depth
from vaekit_image.folders import halvable_size

from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"


def write_folder(root, sizes, modes, classes=("a", "b")):
    """Random images of the given (w, h) sizes and Pillow modes, spread over class subfolders."""
    rng = np.random.default_rng(0)
    for i, ((w, h), mode) in enumerate(zip(sizes, modes, strict=True)):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        shape = (h, w) if mode == "L" else (h, w, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("side,size", [(28, 28), (30, 28), (32, 32), (37, 32), (64, 64), (500, 64), (5, 8)])
def test_halvable_size(side, size):
    assert halvable_size(side) == size


@pytest.mark.parametrize("size,depth", [(28, 2), (32, 3), (40, 3), (64, 4), (8, 1), (12, 1)])
def test_default_depth(size, depth):
    assert default_depth(size) == depth


def test_grayscale_folder_of_mixed_sizes(tmp_path):
    root = write_folder(tmp_path / "gray", [(28, 28), (28, 28), (30, 26), (28, 40), (20, 20)], ["L"] * 5)
    bundle, model = data_and_model({"name": "folder", "root": str(root), "val_fraction": 0.2},
                                   {"width": 4, "hidden": 0, "latent_dim": 2}, tmp_path)
    assert (bundle.info["size"], bundle.info["channels"]) == (28, 1)  # median shorter side 28, all grayscale
    assert bundle.train[0]["x"].shape == (1, 28, 28)
    assert model.config["model"]["depth"] == 2


def test_one_colour_image_makes_the_folder_colour(tmp_path):
    root = write_folder(tmp_path / "mixed", [(64, 64), (80, 64), (64, 70), (64, 64)], ["L", "RGB", "L", "L"])
    bundle, model = data_and_model({"name": "folder", "root": str(root), "val_fraction": 0.25},
                                   {"width": 4, "hidden": 0, "latent_dim": 2}, tmp_path)
    assert (bundle.info["size"], bundle.info["channels"]) == (64, 3)
    assert bundle.train[0]["x"].shape == (3, 64, 64)
    assert model.config["model"]["depth"] == 4


def test_recipe_values_win_over_the_data(tmp_path):
    root = write_folder(tmp_path / "gray", [(28, 28)] * 4, ["L"] * 4)
    bundle, model = data_and_model({"name": "folder", "root": str(root), "size": 32, "channels": 3,
                                    "val_fraction": 0.25}, {"width": 4, "hidden": 0, "latent_dim": 2, "depth": 2},
                                   tmp_path)
    assert (bundle.info["size"], bundle.info["channels"]) == (32, 3)
    assert model.config["model"]["depth"] == 2


@pytest.mark.parametrize("side,mode,chosen", [(28, "L", (28, 1, 2)), (64, "RGB", (64, 3, 4))])
def test_one_recipe_for_grayscale_and_colour_folders(tmp_path, side, mode, chosen):
    root = write_folder(tmp_path / "images", [(side, side)] * 10, [mode] * 10)
    run = tmp_path / "run"
    args = ["train", str(RECIPES / "folder.yaml"), f"data.root={root}", "trainer.batch_size=4",
            "trainer.eval_every=1000", "trainer.samples=0", "data.val_fraction=0.2", "--out", str(run)]
    assert main(args + ["trainer.max_steps=2"]) == 0
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert (saved["data"]["size"], saved["data"]["channels"], saved["model"]["depth"]) == chosen
    # Resuming re-derives the same geometry, so the recipe still matches the saved one.
    assert main(args + ["trainer.max_steps=3", "--resume"]) == 0


def test_one_line_each_for_the_chosen_geometry_an_upscaled_image_and_a_mixed_folder(tmp_path, capsys):
    root = write_folder(tmp_path / "mixed", [(40, 40), (48, 40), (40, 44), (40, 40), (1, 1)],
                        ["RGB", "L", "L", "RGB", "RGB"])
    Image.fromarray(np.zeros((40, 40, 4), dtype=np.uint8), "RGBA").save(root / "a" / "icon.png")
    data_and_model({"name": "folder", "root": str(root), "val_fraction": 0.2},
                   {"width": 4, "hidden": 0, "latent_dim": 2}, tmp_path)
    said = capsys.readouterr().err.splitlines()
    assert said == [
        "vaekit: note: data: 1 of 6 images is smaller than 40x40 and upscaled (4.png, from 1x1); remove them or set "
        "data.size",
        "vaekit: note: data: 2 of 6 images are greyscale (e.g. 2.png) and converted to RGB to go with the colour "
        "ones; data.channels: 1 trains on grey instead",
        "vaekit: note: data: 1 of 6 images has transparency (e.g. icon.png), which is dropped: transparent pixels "
        "show the colour stored under them (often black)",
        "vaekit: note: chose data.size 40 (the images' median shorter side), data.channels 3 (4 of 6 images are "
        "colour), model.depth 3 (halvings of 40 px down to 5x5); set them in the recipe to choose otherwise"]
    data_and_model({"name": "folder", "root": str(root), "val_fraction": 0.2, "size": 32, "channels": 1},
                   {"width": 4, "hidden": 0, "latent_dim": 2, "depth": 2}, tmp_path)
    said = capsys.readouterr().err.splitlines()  # the recipe chose: only what happens to the images is said
    assert len(said) == 2 and "smaller than 32x32" in said[0] and "transparency" in said[1]
