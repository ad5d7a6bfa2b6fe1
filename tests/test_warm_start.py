"""trainer.init_from / init_parts: a run that starts from another run's weights, all of them or named parts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_model
from torch import nn

from vaekit.cli import main
from vaekit.config.recipe import load_recipe
from vaekit.io.checkpoint import checkpoints
from vaekit.training.trainer import Trainer
from vaekit.training.warm_start import warm_start


def weights(run: Path, step: int | None = None) -> dict:
    folder = checkpoints(run)[-1] if step is None else run / "checkpoints" / f"step-{step}"
    return load_file(str(folder / "model.safetensors"))


def split(tensors: dict, part: str) -> dict:
    return {k: v for k, v in tensors.items() if k.startswith(part + ".")}


@pytest.fixture
def source_run(points_recipe, tmp_path) -> Path:
    run = tmp_path / "source"
    assert main(["train", str(points_recipe), "--out", str(run), "trainer.epochs=2", "trainer.samples=0"]) == 0
    return run


def initial_weights(recipe: Path, run: Path, *overrides: str) -> dict:
    """The model's weights as the trainer built them, before any optimizer step."""
    trainer = Trainer(load_recipe(recipe, ["trainer.samples=0", *overrides]), run)
    trainer.folder.open()
    try:
        trainer._setup()
        return {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()}
    finally:
        os.close(trainer.folder.lock)


def test_the_named_part_starts_from_the_source_and_the_rest_from_scratch(points_recipe, source_run, tmp_path):
    # Compared before any step: what the code guarantees is the copy and the seeded initialisation, not where an
    # optimizer step (whose sign follows a gradient that differs in the last bits between CPUs) takes them.
    warm = initial_weights(points_recipe, tmp_path / "warm", f"trainer.init_from={source_run}",
                           "trainer.init_parts=[encoder]")
    fresh = initial_weights(points_recipe, tmp_path / "scratch")
    source = weights(source_run)
    encoder = split(source, "encoder")
    assert encoder and all(warm[name].equal(tensor) for name, tensor in encoder.items())
    decoder = split(fresh, "decoder")
    assert decoder and all(warm[name].equal(tensor) for name, tensor in decoder.items())
    assert any(not warm[name].allclose(source[name]) for name in decoder), "the source's decoder was copied too"
    record = [json.loads(line) for line in (tmp_path / "warm" / "metrics.jsonl").read_text().splitlines()][0]
    assert record["split"] == "init" and record["init_parts"] == ["encoder"] and record["tensors"] > 0


def test_without_parts_every_weight_is_copied_and_resume_needs_no_source(points_recipe, source_run, tmp_path):
    run = tmp_path / "warm"
    overrides = ["trainer.max_steps=2", "trainer.samples=0", "trainer.checkpoint_every=1", "trainer.lr=1e-30",
                 "trainer.warmup_steps=0", f"trainer.init_from={source_run}"]
    assert main(["train", str(points_recipe), "--out", str(run), *overrides]) == 0
    source, warm = weights(source_run), weights(run, step=1)
    assert all(warm[name].allclose(tensor, atol=1e-6) for name, tensor in source.items())
    shutil.rmtree(checkpoints(run)[-1])  # resume from step 1 after the source is gone: the run has its own weights
    shutil.rmtree(source_run)
    assert main(["train", str(points_recipe), "--out", str(run), "--resume", *overrides]) == 0
    assert checkpoints(run)[-1].name == "step-2"


@pytest.mark.parametrize("override, expected", [
    ("trainer.init_from={missing}", "trainer.init_from: {missing}: no such run or model folder"),
    ("trainer.init_parts=[encodr]", "trainer.init_parts: encodr is not a part of this model; its parts: decoder, "
                                    "encoder"),
    ("model.hidden=16", "trainer.init_from: {weights}: encoder."),
])
def test_a_warm_start_that_cannot_fit_is_one_line_naming_the_key(points_recipe, source_run, tmp_path, capsys,
                                                                    override, expected):
    missing = tmp_path / "nowhere"
    override = override.format(missing=missing)
    init = f"trainer.init_from={missing if 'nowhere' in override else source_run}"
    code = main(["train", str(points_recipe), "--out", str(tmp_path / "warm"), "trainer.max_steps=1", init, override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    last = checkpoints(source_run)[-1]
    assert expected.format(missing=missing, weights=last / "model.safetensors") in err[0], err[0]
    if "hidden" in override:
        assert "has shape" in err[0] and "this model's" in err[0]


class TiedPair(nn.Module):
    """An embedding and an output layer sharing one weight, as language models often do."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Embedding(5, 3)
        self.decoder = nn.Linear(3, 5, bias=False)
        self.decoder.weight = self.encoder.weight


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_a_tied_weight_stored_once_starts_either_part(tmp_path, part):
    source = TiedPair()
    folder = tmp_path / "pretrained"
    folder.mkdir()
    save_model(source, str(folder / "model.safetensors"))  # keeps one of the two names
    (folder / "config.json").write_text(json.dumps({"plugin": "toy", "model": {}, "info": {}}))
    assert len(load_file(str(folder / "model.safetensors"))) == 1
    model = TiedPair()
    record = warm_start(model, folder, [part], tmp_path / "assets")
    assert record["tensors"] == 1 and getattr(model, part).weight.equal(source.encoder.weight)
