"""M1+M2 over a speech VAE, whose latent is a sequence: its codes pooled over time, trained, evaluated and used
by `vaekit classify` on WAV files; and the one-line errors where a sequence latent cannot serve."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from vaekit import VAE, DataBundle
from vaekit.cli import main
from vaekit.config.semi_supervised import SemiSupervisedConfig, encode_means, semi_supervised_bundle
from vaekit.core.distributions import DiagonalGaussian

RECORDINGS = Path(os.environ.get("VAEKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "fsdd" \
    / "recordings"
RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "speech" / "folder.yaml")
TINY_M1 = ["data.sample_rate=8000", "data.n_mels=32", "data.val_fraction=0.2", "data.test_fraction=0.2",
           "model.latent_dim=4", "model.channels=[8]", "model.hidden=16", "trainer.max_steps=3", "trainer.min_steps=0",
           "trainer.batch_size=8", "trainer.eval_every=1000", "trainer.samples=0", "trainer.threads=1",
           "trainer.progress=false", "trainer.keep_best=false", "eval.iw_samples=0"]
M2 = ["objective.kind=m2", "semi_supervised.labelled=4", "semi_supervised.latent_dim=2", "semi_supervised.hidden=16",
      "semi_supervised.segments=2", "trainer.max_steps=5", "trainer.eval_every=5"]


def clip_folder(root: Path, takes: int = 8) -> list[Path]:
    """FSDD recordings of digits 0 and 1 by one speaker, with a metadata.csv labelling every clip."""
    root.mkdir()
    rows, files = ["file,label,speaker"], []
    for digit in (0, 1):
        for take in range(takes):
            name = f"{digit}_jackson_{take}.wav"
            shutil.copyfile(RECORDINGS / name, root / name)
            rows.append(f"{name},{digit},jackson")
            files.append(root / name)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return files


@pytest.mark.slow
def test_m1_m2_pools_a_speech_run_over_time_trains_evaluates_and_classifies_wav_files(tmp_path, capsys):
    files = clip_folder(tmp_path / "clips")
    data = [f"data.root={tmp_path / 'clips'}", f"data.metadata={tmp_path / 'clips' / 'metadata.csv'}"]
    assert main(["train", RECIPE, *data, *TINY_M1, "--out", str(tmp_path / "m1")]) == 0
    m1m2 = [*data, *TINY_M1, *M2, f"semi_supervised.codes_from={tmp_path / 'm1'}"]
    assert main(["train", RECIPE, *m1m2, "--out", str(tmp_path / "m1m2")]) == 0
    config = json.loads(next((tmp_path / "m1m2" / "checkpoints").glob("step-*/config.json")).read_text())
    assert config["info"]["semi_supervised"]["code_dim"] == (2 + 1) * 4  # two halves of time and the spread, D = 4
    assert main(["eval", str(tmp_path / "m1m2")]) == 0
    assert 0.0 <= json.loads((tmp_path / "m1m2" / "eval-test.json").read_text())["class_error"] <= 100.0
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "m1m2"), str(files[0]), str(files[-1])]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [line[0] for line in lines] == [str(files[0]), str(files[-1])]
    assert all(line[1] in ("0", "1") and 0.0 < float(line[2]) <= 1.0 for line in lines)

    # M2 end to end needs one vector per recording from the plugin's encoder: a sequence latent says what to do.
    assert main(["train", RECIPE, *data, *TINY_M1, *M2, "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vector latent" in err and "semi_supervised.codes_from" in err
    assert main(["train", RECIPE, *m1m2, "semi_supervised.segments=0", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "segments: expected a number of stretches of time >= 1, got 0" in err


def test_codes_from_a_feature_map_latent_is_one_line(tmp_path):
    from vaekit import RecipeError, get_plugin
    from vaekit.config.reading import build_dataclass

    plugin = get_plugin("image")
    cfg = build_dataclass(plugin.model_config, {"architecture": "conv", "latent_shape": "spatial", "width": 4,
                                                 "depth": 1, "latent_channels": 2}, "model")
    model = plugin.build_model(cfg, {"size": 8, "channels": 1, "condition": "none"}, assets=tmp_path)
    images = [{"x": torch.rand(1, 8, 8)} for _ in range(3)]
    with pytest.raises(RecipeError, match=r"^semi_supervised.codes_from: one code per example comes from a vector "
                                          r"latent \[D\] or a sequence \[T, D\] \(pooled over time\); this latent "
                                          r"has shape \(2, 4, 4\)$"):
        encode_means(model, images, lambda items: {"x": torch.stack([item["x"] for item in items])})


class StepEncoder(torch.nn.Module):
    """q(z|x) per step of a padded sequence {"seq": [B, T, 1], "mask": [B, T]}: mean = the step's value, std 0.5."""

    def forward(self, x, c=None) -> DiagonalGaussian:
        mean = x["seq"].expand(-1, -1, 2).clone()
        return DiagonalGaussian(mean, torch.full_like(mean, math.log(0.25)), event_dims=2, mask=x["mask"])


def padded(items: list[dict]) -> dict:
    """Items {"x": [T_i], "label"} as one padded batch."""
    length = max(len(item["x"]) for item in items)
    seq, mask = torch.zeros(len(items), length, 1), torch.zeros(len(items), length)
    for i, item in enumerate(items):
        seq[i, :len(item["x"]), 0], mask[i, :len(item["x"])] = item["x"], 1.0
    return {"x": {"seq": seq, "mask": mask}, "label": torch.stack([item["label"] for item in items])}


@pytest.mark.parametrize("code_noise", [1.0, 3.0])
def test_pooled_codes_are_the_pooled_means_and_their_draws_spread_by_code_noise(code_noise):
    items = [{"x": torch.arange(1.0, 7.0) * (i + 1), "label": torch.tensor(i % 2)} for i in range(4)]
    items.append({"x": torch.tensor([5.0, 7.0, 9.0]), "label": torch.tensor(1)})  # shorter: padded in its batch
    bundle = DataBundle(train=items, val=None, test=list(items), info={"class_names": ["a", "b"]}, collate=padded)
    codes_model = VAE(StepEncoder(), torch.nn.Identity(), 2, latent_shape=(None, 2))
    cfg = SemiSupervisedConfig(segments=3, code_noise=code_noise)
    data = semi_supervised_bundle(bundle, cfg, seed=0, codes_model=codes_model)
    # Thirds of 1..6 times k: (1.5, 3.5, 5.5) k, both units alike; the spread of 1..6 times k; and 5, 7, 9 alone.
    spread = torch.tensor([1.0, 2, 3, 4, 5, 6]).std(unbiased=False)
    expected = {**{i: torch.tensor([1.5, 1.5, 3.5, 3.5, 5.5, 5.5, spread, spread]) * (i + 1) for i in range(4)},
                4: torch.tensor([5.0, 5, 7, 7, 9, 9, 1.63299, 1.63299])}
    assert len(data.test) == 5
    for row in range(5):  # every test item is labelled, so the test split keeps them all, in order
        assert torch.allclose(data.test[row]["x"], expected[row], atol=1e-4)
    # A third of a recording's steps, each with std 0.5, averages to std 0.5 / sqrt(2) (6 steps) or 0.5 (3 steps).
    third = data.train.scales[:, :4].mean(0) / code_noise
    assert 0.25 < float(third.min()) and float(third.max()) < 0.6
    torch.manual_seed(0)
    draws = torch.stack([data.train[0]["x"] for _ in range(2000)])
    assert torch.allclose(draws.std(0)[:4], data.train.scales[0, :4], rtol=0.1)
    with pytest.raises(ValueError, match="code_noise: expected a positive multiple of the codes' spread, got 0"):
        SemiSupervisedConfig(code_noise=0)
