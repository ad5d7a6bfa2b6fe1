"""Image files a new user really has: 16-bit PNGs, stray files beside class folders, unreadable files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from image_test_helpers import configs, plugin, write_png
from PIL import Image
from vaekit_image.images import load_image

from vaekit import RecipeError
from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"


def write_png16(path: Path, values: np.ndarray) -> Path:
    """A real 16-bit PNG (greyscale [H, W] or RGB [H, W, 3]) written byte by byte, as scanners and microscopes do."""
    height, width = values.shape[:2]
    colour = 0 if values.ndim == 2 else 2
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def ramp16(size: int = 16) -> np.ndarray:
    """A left-to-right ramp over the whole 16-bit range."""
    return np.tile(np.linspace(0, 65535, size).round().astype(np.uint16), (size, 1))


def test_a_16_bit_greyscale_png_is_scaled_not_clipped_to_white(tmp_path):
    path = write_png16(tmp_path / "ramp16.png", ramp16())
    assert Image.open(path).mode == "I;16"  # Pillow's own convert("L") would clip this to white
    for channels in (1, 3):
        pixels = load_image(path, 16, channels).numpy().astype(int)
        expected = np.round(ramp16() / 257).astype(int)
        assert np.abs(pixels - expected).max() <= 1  # every channel, every pixel: the ramp, not 255
        assert pixels.min() == 0 and pixels[..., 8].mean() == pytest.approx(expected[:, 8].mean(), abs=1)


def test_a_16_bit_png_trains_and_reconstructs_as_its_8_bit_twin(tmp_path, capsys):
    root = tmp_path / "grey"
    rng = np.random.default_rng(0)
    for i in range(12):
        write_png16(root / f"{i:02d}.png", (rng.integers(0, 256, (16, 16)) * 257).astype(np.uint16))
    data_cfg, _ = configs({"name": "folder", "root": str(root), "size": 16, "channels": 1}, {})
    bundle = plugin().build_data(data_cfg, seed=0, assets=tmp_path)
    assert 0.3 < float(bundle.train.images.float().mean()) / 255 < 0.7  # not 1.0, every pixel white
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "shapes.yaml"), "data.name=folder", f"data.root={root}", "data.size=16",
                 "data.channels=1", "trainer.max_steps=2", "trainer.batch_size=4", "trainer.samples=0",
                 "trainer.progress=false", "model.width=8", "model.hidden=16", "model.depth=2",
                 "data.val_fraction=0.2", "--out", str(run)]) == 0
    eight = write_png(tmp_path / "eight.png", 16)
    sixteen = write_png16(tmp_path / "sixteen.png", np.asarray(Image.open(eight)).astype(np.uint16) * 257)
    for name, source in (("8", eight), ("16", sixteen)):
        assert main(["reconstruct", str(run), str(source), "-o", str(tmp_path / name)]) == 0
    same = [np.asarray(Image.open(tmp_path / name / "reconstructions.png")) for name in ("8", "16")]
    assert np.array_equal(same[0], same[1])


def test_images_beside_class_folders_are_an_error_naming_them(tmp_path):
    root = tmp_path / "images"
    for label in ("cats", "dogs"):
        for i in range(3):
            write_png(root / label / f"{i}.png", 20, seed=i)
    write_png(root / "stray.png", 20)
    data_cfg, _ = configs({"name": "folder", "root": str(root), "size": 16}, {})
    with pytest.raises(RecipeError) as error:
        plugin().build_data(data_cfg, seed=0, assets=tmp_path)
    assert str(error.value) == (f"data.root: {root} holds 1 image file(s) (stray.png) beside class subfolders "
                                "(cats, dogs); move them into a class folder, or point data.root at a folder of "
                                "images only")


def test_skipped_files_are_one_line_of_the_runs_output_and_listed_in_the_run(tmp_path, capsys):
    root = tmp_path / "images"
    for i in range(10):
        write_png(root / f"{i}.png", 20, seed=i)
    names = [f"bad{i}.png" for i in range(5)]
    for name in names:
        (root / name).write_bytes(b"not an image at all")
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "shapes.yaml"), "data.name=folder", f"data.root={root}", "data.size=16",
                 "data.channels=1", "data.skip_bad_files=true", "data.val_fraction=0.2", "trainer.max_steps=1",
                 "trainer.batch_size=4", "trainer.samples=0", "trainer.progress=false", "model.width=8",
                 "model.hidden=16", "model.depth=2", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "skipped" in line]
    assert lines == [f"vaekit: skipped 5 unreadable data file(s): {root / 'bad0.png'}, {root / 'bad1.png'}, "
                     f"{root / 'bad2.png'} and 2 more; every one with its reason in {run / 'skipped-files.txt'}"]
    assert "UserWarning" not in err and "warnings.warn" not in err
    listed = (run / "skipped-files.txt").read_text().splitlines()
    assert [line.split(": ")[0] for line in listed] == [str(root / name) for name in names]
    assert all("not a readable image" in line for line in listed)


def test_per_class_on_an_unconditional_model_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "shapes.yaml"), "trainer.max_steps=1", "trainer.batch_size=8",
                 "trainer.samples=0", "trainer.progress=false", "data.num_train=16", "data.num_val=8",
                 "data.num_test=8", "model.width=8", "model.hidden=16", "latent.sampler=prior", "--out",
                 str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--per-class", "5", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("vaekit: error: --per-class 5: this image model is unconditional (no classes); "
                   "use -n for the number of samples")
    assert not (tmp_path / "s").exists()
    for option, value, low in (("--per-class", "0", 1), ("--samples", "0", 1), ("--steps", "1", 2)):
        verb = {"--per-class": "sample", "--samples": "superres", "--steps": "traverse"}[option]
        extra = ["x.png"] if verb == "superres" else []
        with pytest.raises(SystemExit):
            main([verb, str(run), *extra, option, value])
        assert capsys.readouterr().err == (f"vaekit {verb}: error: argument {option}: expected an integer >= {low}, "
                                           f"got {value} (see vaekit {verb} --help)\n")


@pytest.mark.parametrize("verb", ["traverse", "inpaint", "superres"])  # traverse: the engine's verb
def test_plugin_verbs_give_help_without_a_run(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: vaekit {verb}") and "--out-dir" in out
