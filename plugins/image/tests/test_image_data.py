"""Image data: procedural shapes, MNIST IDX files, image folders, their errors, and the recipes."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
import torch
from image_test_helpers import configs, plugin, write_png
from vaekit_image.images import ImageFileError
from vaekit_image.mnist import read_idx
from vaekit_image.pixels import ImageDataError
from vaekit_image.shapes import ShapesDataset

from vaekit import RecipeError, SubsetConfig, load_recipe
from vaekit.config.subsets import chosen_indices

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"



def build(data: dict, tmp_path: Path, subset: SubsetConfig | None = None):
    data_cfg, _ = configs(data, {})
    return plugin().build_data(data_cfg, seed=0, assets=tmp_path, subset=subset)


def test_shapes_are_deterministic_binary_and_labelled(tmp_path):
    bundle = build({"name": "shapes", "num_train": 50, "condition": "label"}, tmp_path)
    again = build({"name": "shapes", "num_train": 50, "condition": "label"}, tmp_path)
    item = bundle.train[7]
    assert item["x"].shape == (1, 32, 32)
    assert set(item["x"].unique().tolist()) <= {0.0, 1.0} and item["x"].sum() > 10
    assert torch.equal(item["x"], again.train[7]["x"]) and item["c"] == again.train[7]["c"]
    assert not torch.equal(bundle.train[7]["x"], bundle.val[7]["x"])  # splits draw different factors
    assert bundle.info["class_names"] == ["square", "ellipse", "heart"]
    shapes = ShapesDataset(list(range(10)), seed=0, split=0, size=64)
    factors = shapes.factors(3)
    assert set(factors) == {"shape", "scale", "rotation", "x", "y"}
    moved = dict(factors, x=(factors["x"] + 16) % 32)
    assert not torch.equal(shapes.render(factors), shapes.render(moved))


def reference_shape(factors: dict, size: int) -> torch.Tensor:
    """The shape drawn pixel by pixel from its definition (a square, an ellipse, a heart), for comparison."""
    scale = 0.5 + 0.5 * factors["scale"] / 5
    angle = 2 * math.pi * factors["rotation"] / 40
    cx, cy = -0.45 + 0.9 * factors["x"] / 31, -0.45 + 0.9 * factors["y"] / 31
    image = torch.zeros(1, size, size)
    for row in range(size):
        for col in range(size):
            dx, dy = (col + 0.5) / size * 2 - 1 - cx, (row + 0.5) / size * 2 - 1 - cy
            u = (math.cos(angle) * dx + math.sin(angle) * dy) / (0.7 * scale)
            v = (-math.sin(angle) * dx + math.cos(angle) * dy) / (0.7 * scale)
            image[0, row, col] = [max(abs(u), abs(v)) <= 0.7, u**2 + (v / 0.55) ** 2 <= 1.0,
                                  inside_heart(u, -v - 0.4)][factors["shape"]]
    return image


def inside_heart(x: float, y: float) -> bool:
    """Lobes of radius 0.5 at (+-0.5, 0), and the polygon from the point (0, -1.3) to where its lines touch them."""
    centre, radius, tip = (0.5, 0.0), 0.5, (0.0, -1.3)
    away = math.atan2(tip[1] - centre[1], tip[0] - centre[0]) + math.acos(radius / math.dist(centre, tip))
    touch = (centre[0] + radius * math.cos(away), centre[1] + radius * math.sin(away))  # on the right lobe's outside
    polygon = [tip, touch, centre, (-centre[0], 0.0), (-touch[0], touch[1])]  # convex, counter-clockwise
    left_of_every_edge = all((b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) >= 0
                             for a, b in zip(polygon, polygon[1:] + polygon[:1], strict=True))
    return math.dist((abs(x), y), centre) <= radius or left_of_every_edge


def test_shapes_drawn_all_at_once_match_their_definition():
    shapes = ShapesDataset(list(range(300, 330)), seed=3, split=1, size=32)
    assert {shapes.factors(i)["shape"] for i in range(len(shapes))} == {0, 1, 2}
    for i in range(len(shapes)):
        factors = shapes.factors(i)
        assert torch.equal(shapes[i]["x"], reference_shape(factors, 32)), factors
        assert torch.equal(shapes.render(factors), shapes[i]["x"]) and shapes[i]["label"] == factors["shape"]


def test_mnist_splits_and_dynamic_binarization(data_dir, tmp_path):
    bundle = build({"name": "mnist", "root": str(data_dir / "mnist")}, tmp_path)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50000, 10000, 10000)
    assert bundle.info["binarized"] and bundle.info["size"] == 28
    torch.manual_seed(1)
    first = bundle.train[0]["x"]
    torch.manual_seed(1)
    assert torch.equal(first, bundle.train[0]["x"])  # draws come from torch's global RNG
    assert set(first.unique().tolist()) == {0.0, 1.0}
    draws = torch.stack([bundle.train[0]["x"] for _ in range(5)])
    assert not all(torch.equal(draws[0], d) for d in draws[1:])


def test_mnist_static_binarization_is_fixed(data_dir, tmp_path):
    bundle = build({"name": "mnist", "root": str(data_dir / "mnist"), "binarize": "static", "condition": "lowres"},
                   tmp_path, SubsetConfig(train=100))
    assert torch.equal(bundle.train[3]["x"], bundle.train[3]["x"])
    assert set(bundle.train[3]["x"].unique().tolist()) == {0.0, 1.0}
    assert len(bundle.train) == 100 and bundle.train[3]["c"].shape == (1, 7, 7)


def test_truncated_idx_file_names_the_file(data_dir, tmp_path):
    raw = gzip.open(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read()
    truncated = tmp_path / "t10k-labels-idx1-ubyte.gz"
    truncated.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ImageDataError, match="t10k-labels-idx1-ubyte.gz: truncated"):
        read_idx(truncated)
    cut_gzip = tmp_path / "cut.gz"
    cut_gzip.write_bytes(gzip.compress(raw)[:500])
    with pytest.raises(ValueError, match="cut.gz"):
        read_idx(cut_gzip)


def test_missing_mnist_files_are_a_recipe_error(tmp_path):
    with pytest.raises(RecipeError, match="train-images-idx3-ubyte.gz not found"):
        build({"name": "mnist", "root": str(tmp_path)}, tmp_path)


def image_folder(root: Path) -> Path:
    for label in ("cats", "dogs"):
        for i in range(5):
            write_png(root / label / f"{i}.png", size=40 + i, channels=3, seed=i)
    return root


def test_folder_with_classes_is_resized_and_split(tmp_path):
    root = image_folder(tmp_path / "images")
    bundle = build({"name": "folder", "root": str(root), "size": 32, "val_fraction": 0.2,
                    "condition": "label"}, tmp_path)
    assert bundle.info["class_names"] == ["cats", "dogs"] and bundle.info["channels"] == 3
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (6, 2, 2)
    item = bundle.train[0]
    assert item["x"].shape == (3, 32, 32) and 0 <= item["x"].min() and item["x"].max() <= 1


def test_corrupt_and_truncated_images_name_the_file(tmp_path):
    root = image_folder(tmp_path / "images")
    good = (root / "cats" / "0.png").read_bytes()
    (root / "cats" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "dogs" / "garbage.png").write_bytes(b"this is not an image")
    with pytest.raises(ImageFileError, match="truncated.png"):
        build({"name": "folder", "root": str(root), "size": 16}, tmp_path)
    bundle = build({"name": "folder", "root": str(root), "size": 16, "skip_bad_files": True}, tmp_path)
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 10
    assert [line.split(": ")[0] for line in bundle.skipped] == [str(root / "cats" / "truncated.png"),
                                                                str(root / "dogs" / "garbage.png")]


def test_bad_data_section_is_a_recipe_error(tmp_path):
    with pytest.raises(RecipeError, match="data.binarize: expected one of"):
        configs({"binarize": "dynamc"}, {})
    with pytest.raises(RecipeError, match="channels"):
        configs({"channels": 2}, {})
    with pytest.raises(RecipeError, match="root"):
        configs({"name": "mnist"}, {})


@pytest.mark.parametrize("name", ["shapes", "mnist", "mnist_long", "mnist_cvae", "mnist_superres", "folder"])
def test_recipes_parse(name, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    overrides = [f"data.root={image_folder(tmp_path / 'images')}"] if name == "folder" else []
    path = RECIPES / f"{name}.yaml"
    assert path.read_text().startswith("#"), "each recipe starts with a header comment"
    recipe = load_recipe(path, overrides)
    assert recipe.plugin == "image" and recipe.name == name


def test_a_subset_keeps_drawn_shapes_with_their_factors_and_drawn_mnist_digits(data_dir, tmp_path):
    whole = build({"name": "shapes", "num_train": 50}, tmp_path)
    cut = build({"name": "shapes", "num_train": 50}, tmp_path, SubsetConfig(train=6, test=3))
    kept = chosen_indices(50, 6, 0, "train")
    assert (len(cut.train), len(cut.val), len(cut.test)) == (6, 1000, 3)
    assert [cut.train.factors(i) for i in range(6)] == [whole.train.factors(k) for k in kept]
    assert all(torch.equal(cut.train[i]["x"], whole.train[k]["x"]) for i, k in enumerate(kept))
    mnist = build({"name": "mnist", "root": str(data_dir / "mnist"), "binarize": "none"}, tmp_path,
                  SubsetConfig(train=20))
    images = read_idx(data_dir / "mnist" / "train-images-idx3-ubyte.gz")
    kept = chosen_indices(50000, 20, 0, "train")
    assert len(mnist.train) == 20 and len(mnist.val) == 10000
    assert torch.equal(mnist.train[5]["x"][0], torch.from_numpy(images[kept[5]].copy()).float() / 255)
