"""Every artifact writer produces PNGs of the expected size; inpainting keeps known pixels exactly."""

from __future__ import annotations

import numpy as np
import pytest
from image_test_helpers import grid_size, info, plugin, png_size, tiny_model, write_png
from PIL import Image
from vaekit_image import artifacts

from vaekit import PluginError


def test_sample_grid_and_per_class_rows(tmp_path):
    model = tiny_model(info(28), tmp_path)
    (grid,) = plugin().sample(model, 9, None, tmp_path / "plain")
    assert png_size(grid) == grid_size(3, 3, 28)
    cvae = tiny_model(info(28, condition="label", num_classes=10), tmp_path)
    (rows,) = plugin().sample(cvae, 16, None, tmp_path / "cvae", per_class=4)
    assert png_size(rows) == grid_size(4, 10, 28)  # one row per class
    (one,) = plugin().sample(cvae, 4, plugin().parse_condition("7", cvae), tmp_path / "seven")
    assert png_size(one) == grid_size(2, 2, 28)


def test_sample_folder_is_an_image_folder(tmp_path):
    from torchvision.datasets import ImageFolder

    cvae = tiny_model(info(32, channels=3, condition="label", num_classes=3), tmp_path, depth=3)
    files = plugin().sample(cvae, 0, None, tmp_path / "aug", per_class=2, format="folder")
    assert len(files) == 6
    dataset = ImageFolder(str(tmp_path / "aug"))
    assert dataset.classes == ["0", "1", "2"] and len(dataset) == 6
    assert [len(list((tmp_path / "aug" / name).iterdir())) for name in dataset.classes] == [2, 2, 2]  # K per class
    image, label = dataset[5]
    assert image.size == (32, 32) and label == 2


def test_reconstruct_and_interpolate(tmp_path):
    model = tiny_model(info(28), tmp_path)
    a, b = write_png(tmp_path / "a.png", 28, seed=1), write_png(tmp_path / "b.png", 40, channels=3, seed=2)
    (rec,) = plugin().reconstruct(model, [str(a), str(b)], None, tmp_path / "rec")
    assert png_size(rec) == grid_size(2, 2, 28)
    for method in ("linear", "slerp"):
        (path,) = plugin().interpolate(model, str(a), str(b), tmp_path / method, steps=5, method=method)
        assert png_size(path) == grid_size(7, 1, 28)


def test_label_models_ask_for_a_label(tmp_path):
    cvae = tiny_model(info(28, condition="label", num_classes=10), tmp_path)
    a = write_png(tmp_path / "a.png", 28)
    with pytest.raises(PluginError, match="give --condition"):
        plugin().interpolate(cvae, str(a), str(a), tmp_path)
    with pytest.raises(ValueError, match="expected a class name or index 0-9"):
        plugin().parse_condition("eleven", cvae)
    (path,) = plugin().interpolate(cvae, str(a), str(a), tmp_path, steps=3, condition="4")
    assert png_size(path) == grid_size(5, 1, 28)


def test_traverse_rows_per_dimension(tmp_path):
    model = tiny_model(info(32), tmp_path, depth=3)
    (path,) = artifacts.traverse(model, tmp_path, steps=5)
    assert png_size(path) == grid_size(5, 4, 32)  # latent_dim 4
    image = write_png(tmp_path / "x.png", 32)
    (path,) = artifacts.traverse(model, tmp_path / "input", input=str(image), dims=[1, 3], steps=7)
    assert png_size(path) == grid_size(7, 2, 32)
    with pytest.raises(ValueError, match="--dims"):
        artifacts.traverse(model, tmp_path, dims=[9])


def test_traverse_of_a_model_without_run_data_starts_from_the_prior_mean_and_says_so(tmp_path, capsys):
    model = tiny_model(info(32), tmp_path, depth=3)
    (path,) = plugin().traverse(model, tmp_path / "t", dims="0", steps=3)
    assert png_size(path) == grid_size(3, 1, 32)
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].endswith("give --input IMAGE")
    assert said[0].startswith("vaekit: note: traverse starts from the prior mean: no image of the run's data to start")


@pytest.mark.parametrize("channels", [1, 3])
def test_inpaint_box_leaves_unmasked_pixels_untouched(channels, tmp_path):
    model = tiny_model(info(28, channels=channels), tmp_path)
    source = write_png(tmp_path / "in.png", 28, channels=channels, seed=3)
    inpainted, grid = artifacts.inpaint(model, str(source), tmp_path / "out", box="5,6,20,15", iterations=3)
    before = np.asarray(Image.open(source))
    after = np.asarray(Image.open(inpainted))
    assert after.shape == before.shape and png_size(grid) == grid_size(3, 1, 28)
    box = np.zeros(before.shape[:2], dtype=bool)
    box[6:15, 5:20] = True
    assert np.array_equal(after[~box], before[~box])
    assert not np.array_equal(after[box], before[box])


def test_inpaint_mask_image(tmp_path):
    model = tiny_model(info(28), tmp_path)
    source = write_png(tmp_path / "in.png", 28, seed=4)
    mask = np.zeros((28, 28), dtype=np.uint8)
    mask[10:18, :] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    inpainted, _ = artifacts.inpaint(model, str(source), tmp_path / "out", mask=str(tmp_path / "mask.png"))
    before, after = np.asarray(Image.open(source)), np.asarray(Image.open(inpainted))
    assert np.array_equal(after[mask == 0], before[mask == 0])
    with pytest.raises(ValueError, match="--box"):
        artifacts.inpaint(model, str(source), tmp_path, box="5,5,40,9")


def test_superres_and_lowres_reconstruct(tmp_path):
    model = tiny_model(info(28, condition="lowres"), tmp_path, conditional_prior=True)
    small = write_png(tmp_path / "small.png", 7, seed=5)
    files = artifacts.superres(model, [str(small)], tmp_path / "sr", samples=3)
    assert png_size(files[0]) == (28, 28) and files[0].name == "small_x4.png"
    assert png_size(files[1]) == grid_size(4, 1, 28)
    big = write_png(tmp_path / "big.png", 28, seed=6)
    (rec,) = plugin().reconstruct(model, [str(big)], None, tmp_path / "rec")
    assert png_size(rec) == grid_size(1, 3, 28)  # low-res input, output, original
    (samples,) = plugin().sample(model, 4, None, tmp_path / "samples")
    assert png_size(samples) == grid_size(3, 2, 28)  # 2 stored example conditions, each + 2 draws
    with pytest.raises(PluginError, match="lowres"):
        artifacts.superres(tiny_model(info(28), tmp_path), [str(small)], tmp_path)


def test_an_input_of_another_size_is_resized_and_the_user_is_told(tmp_path, capsys):
    model = tiny_model(info(28, condition="lowres"), tmp_path, conditional_prior=True)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((9, 15), dtype=np.uint8), "L").save(wide)
    out = artifacts.superres(model, [str(wide), str(write_png(tmp_path / "fits.png", 7))], tmp_path / "sr")[0]
    assert png_size(out) == (28, 28)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{wide}: 15x9 resized and centre-cropped to the model's 7x7"]  # the 7x7 one is not named


def test_corrupt_input_image_names_the_file(tmp_path):
    model = tiny_model(info(28), tmp_path)
    good = write_png(tmp_path / "good.png", 28).read_bytes()
    (tmp_path / "cut.png").write_bytes(good[:60])
    with pytest.raises(ValueError, match="cut.png: not a readable image"):
        plugin().reconstruct(model, [str(tmp_path / "cut.png")], None, tmp_path / "rec")


def test_bits_per_dim(tmp_path):
    from vaekit_image.metrics import bits_per_dim

    facts = info(28)
    assert bits_per_dim(784 * np.log(2), facts, "bernoulli") == pytest.approx(1.0)
    assert bits_per_dim(0.0, facts, "gaussian") == pytest.approx(8.0)
