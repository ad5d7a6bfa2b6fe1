"""`vaekit encode`: posterior means as .npy, labels from the data or the inputs' folders, and the 2-D map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_toy_plugin import PointsData, PointsModel, register_points_plugin
from torch.utils.data import DataLoader

from vaekit.encode import encode_batches, file_batches, pca_2d, write_codes


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
