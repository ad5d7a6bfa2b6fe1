"""The speech plugin's batch_amounts: `vaekit train` writes the seconds of audio trained into each train record."""

from __future__ import annotations

import json

import pytest
from vaekit_speech import plugin
from vaekit_speech.data import collate, single_thread

import vaekit
from vaekit.cli import main

TINY = ["data.n_tones=48", "data.n_mels=32", "data.n_fft=256", "model.channels=[8,16]", "model.latent_dim=4",
        "trainer.samples=0", "trainer.progress=false"]


def test_each_train_record_holds_the_seconds_of_audio_its_steps_trained(tmp_path, repo):
    recipe = vaekit.load_recipe(repo / "recipes/speech/tones.yaml", TINY)
    train = vaekit.build_recipe_data(plugin, recipe, tmp_path / "assets").train
    mask = collate([train[i] for i in range(len(train))])["x"]["mask"]
    audio = float(mask.sum()) * recipe.data.hop_length / recipe.data.sample_rate  # the whole training set, s
    run = tmp_path / "run"
    with single_thread():
        # One batch is the whole training set, so every step trains `audio` seconds.
        assert main(["train", str(repo / "recipes/speech/tones.yaml"), *TINY, f"trainer.batch_size={len(train)}",
                     "trainer.max_steps=4", "trainer.log_every=2", "--out", str(run)]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r["audio_seconds"] for r in records if r["split"] == "train"]
    assert trained == [pytest.approx(2 * audio, rel=1e-5)] * 2 and audio > 1.0
