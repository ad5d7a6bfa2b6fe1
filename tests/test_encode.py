"""`vaekit encode`: posterior means as .npy, labels from the data or the inputs' folders, and the 2-D map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_toy_plugin import PointsData, PointsModel, register_points_plugin
from torch.utils.data import DataLoader

from vaekit.evaluation.encode import encode_batches, file_batches, pca_2d, write_codes


def test_pca_of_points_on_a_line_is_the_line():
    t = np.linspace(-1, 1, 50)
    codes = np.stack([t, 2 * t, -t], 1) + 3.0  # one direction of variation, off the origin
    points = pca_2d(codes)
    assert np.allclose(np.abs(points[:, 0]), np.abs(t) * np.sqrt(6), atol=1e-9)
    assert np.allclose(points[:, 1], 0, atol=1e-9)
    assert pca_2d(np.arange(4.0).reshape(4, 1)).shape == (4, 2)  # a 1-D latent: the second column stays 0


def test_codes_are_the_posterior_means_with_the_data_labels(monkeypatch, tmp_path):
    plugin = register_points_plugin(monkeypatch)
    data = plugin.build_data(PointsData(n_points=40), seed=0, assets=tmp_path / "assets")
    model = plugin.build_model(PointsModel(latent_dim=3), data.info, assets=tmp_path / "assets")
    codes, labels = encode_batches(model, DataLoader(data.train, batch_size=7))
    x = torch.stack([data.train[i]["x"] for i in range(len(data.train))])
    assert codes.shape == (20, 3) and np.allclose(codes, model.posterior(x).mean.detach().numpy(), atol=1e-6)
    assert labels == [str(int(data.train[i]["c"])) for i in range(20)]
    written = write_codes(codes, labels, tmp_path / "out" / "codes.npy", "test")
    assert [p.name for p in written] == ["codes.npy", "codes.labels.txt", "codes.png"]
    assert np.array_equal(np.load(written[0]), codes.astype(np.float32))
    assert written[1].read_text().split() == labels and written[2].stat().st_size > 1000
    with pytest.raises(ValueError, match="expected a .npy"):
        write_codes(codes, None, tmp_path / "codes.csv", "test")


def test_files_from_several_folders_are_labelled_by_folder(tmp_path):
    for folder in ("3", "7"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text("x\n")

    class Reader:
        def load_inputs(self, model, inputs):
            return torch.zeros(len(inputs), 2)

    inputs = [str(tmp_path / "3" / "a.txt"), str(tmp_path / "7" / "a.txt")]
    (batch,) = file_batches(Reader(), None, inputs)
    assert batch["label_names"] == ["3", "7"] and batch["x"].shape == (2, 2)
    (batch,) = file_batches(Reader(), None, inputs[:1])
    assert "label_names" not in batch  # one folder says nothing about classes


def test_image_files_encode_through_the_plugin_with_folder_labels(tmp_path):
    from PIL import Image

    import vaekit
    from vaekit.config.reading import build_dataclass
    from vaekit.evaluation.encode import encode_files
    from vaekit.runs import build_model

    plugin = vaekit.get_plugin("image")
    info = {"dataset": "test", "size": 28, "channels": 1, "condition": "none", "class_names": [], "num_classes": 0,
            "lowres_factor": 4, "lowres_size": 7, "binarized": True}
    cfg = build_dataclass(plugin.model_config, {"latent_dim": 4, "width": 8, "hidden": 32}, "model")
    model = build_model(plugin, cfg, info, tmp_path / "assets").eval()
    rng = np.random.default_rng(0)
    files = []
    for folder in ("3", "7", "7"):
        path = tmp_path / "digits" / folder / f"{len(files)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
        files.append(str(path))
    written = encode_files(plugin, model, files, tmp_path / "codes.npy")
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(f), dtype=np.float32) / 255.0)[None] for f in files])
    assert np.allclose(np.load(written[0]), model.posterior(pixels).mean.detach().numpy(), atol=1e-5)
    assert written[1].read_text().split() == ["3", "7", "7"]


@pytest.mark.slow
def test_speech_run_encodes_wav_files_and_its_labelled_split(tmp_path):
    import math
    from pathlib import Path

    import soundfile as sf

    from vaekit.cli import main

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "speech" / "tones.yaml"
    tiny = ["model.channels=[8,16,32]", "model.hidden=64", "model.latent_dim=8", "data.n_mels=32", "data.n_fft=256",
            "trainer.batch_size=16", "trainer.samples=0", "trainer.progress=false", "eval.iw_samples=2",
            "data.n_tones=96", "trainer.max_steps=2"]
    run = tmp_path / "tones"
    assert main(["train", str(recipe), *tiny, "--out", str(run)]) == 0
    waves = []
    for hz in (330, 440):
        waves.append(tmp_path / f"{hz}.wav")
        sf.write(str(waves[-1]), [0.3 * math.sin(2 * math.pi * hz * i / 8000) for i in range(4000)], 8000)
    assert main(["encode", str(run), *map(str, waves), "-o", str(tmp_path / "files.npy")]) == 0
    assert np.load(tmp_path / "files.npy").shape == (2, 8)
    assert main(["encode", str(run), "--split", "test", "-o", str(tmp_path / "test.npy")]) == 0
    codes, labels = np.load(tmp_path / "test.npy"), (tmp_path / "test.labels.txt").read_text().split()
    assert codes.shape[1:] == (8,) and len(labels) == len(codes) > 1 and len(set(labels)) > 1


def test_a_split_is_labelled_with_the_class_names_the_checkpoint_records(tmp_path):
    from PIL import Image

    import vaekit
    from vaekit.config.reading import build_dataclass
    from vaekit.config.subsets import SubsetConfig
    from vaekit.evaluation.encode import encode_split
    from vaekit.runs import build_model

    rng = np.random.default_rng(0)
    for name in ("coat", "bag", "shirt"):  # folder order: bag, coat, shirt (indices 0, 1, 2)
        (tmp_path / "clothes" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "clothes" / name / f"{i}.png")
    plugin = vaekit.get_plugin("image")
    data_cfg = build_dataclass(plugin.data_config, {"name": "folder", "root": str(tmp_path / "clothes"),
                                                    "val_fraction": 0.25}, "data")
    data = plugin.build_data(data_cfg, seed=0, assets=tmp_path / "assets", subset=SubsetConfig())
    cfg = build_dataclass(plugin.model_config, {"latent_dim": 4, "width": 8, "hidden": 32}, "model")
    model = build_model(plugin, cfg, data.info, tmp_path / "assets").eval()
    written = encode_split(model, DataLoader(data.train, batch_size=4, collate_fn=data.collate), tmp_path / "c.npy",
                           "train")
    labels = written[1].read_text().split()
    expected = [["bag", "coat", "shirt"][int(data.train[i]["label"])] for i in range(len(data.train))]
    assert labels == expected and set(labels) == {"bag", "coat", "shirt"}
