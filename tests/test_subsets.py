"""The recipe's subset section: seeded draws per split, cut by the engine for a plugin that does not cut its own."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from helpers_toy_plugin import PLUGIN_NAME, register_points_plugin

import vaekit
from vaekit import DataBundle, RecipeError, SubsetConfig, build_recipe_data
from vaekit.cli import main
from vaekit.config.recipe import parse_recipe
from vaekit.config.subsets import chosen_indices, cut_bundle, pick


def test_a_draw_is_fixed_by_the_seed_sorted_distinct_and_its_own_per_split():
    first = chosen_indices(1000, 50, seed=0, split="train")
    assert first == chosen_indices(1000, 50, seed=0, split="train")
    assert first == sorted(set(first)) and len(first) == 50 and 0 <= first[0] and first[-1] < 1000
    assert first != chosen_indices(1000, 50, seed=1, split="train")
    assert first != chosen_indices(1000, 50, seed=0, split="val")
    assert first != list(range(50))  # a draw, not the first 50


def test_asking_for_more_than_a_split_holds_keeps_it_all_and_says_so(capsys):
    assert chosen_indices(10, None, 0, "train") == list(range(10))
    assert chosen_indices(10, 10, 0, "train") == list(range(10))
    assert capsys.readouterr().err == ""
    assert pick(list("abcdefghij"), SubsetConfig(val=25), 0, "val") == list("abcdefghij")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vaekit: note: subset.val=25 but the val split has 10 examples: all are used"]


def test_the_engine_cuts_each_split_and_the_training_lengths_with_it():
    train, val = torch.arange(100.0)[:, None], torch.arange(100.0, 130.0)[:, None]
    bundle = DataBundle(train=torch.utils.data.TensorDataset(train), val=torch.utils.data.TensorDataset(val),
                        test=None, lengths=list(range(100)))
    cut = cut_bundle(bundle, SubsetConfig(train=7, val=40), seed=5)
    kept = chosen_indices(100, 7, 5, "train")
    assert [cut.train[i][0].item() for i in range(7)] == [float(i) for i in kept]
    assert cut.lengths == kept  # lengths[i] was i: bucketing still sees each kept example's own length
    assert len(cut.val) == 30 and cut.test is None


def test_a_plugin_that_does_not_cut_gets_the_engine_cut_and_the_same_draw_every_time(monkeypatch, tmp_path):
    plugin = register_points_plugin(monkeypatch)
    recipe = parse_recipe({"plugin": PLUGIN_NAME, "seed": 2, "data": {"n_points": 64}, "model": {},
                           "subset": {"train": 5}})
    whole = plugin.build_data(recipe.data, seed=2, assets=tmp_path)
    cut = build_recipe_data(plugin, recipe, tmp_path)
    kept = chosen_indices(len(whole.train), 5, 2, "train")
    assert len(cut.train) == 5 and len(cut.val) == len(whole.val)
    assert all(torch.equal(cut.train[i]["x"], whole.train[k]["x"]) for i, k in enumerate(kept))


@pytest.mark.parametrize(("override", "expected"), [
    ({"train": 0}, "subset: train: expected a number of examples >= 1 (or null for all), got 0"),
    ({"trian": 5}, "subset.trian: unknown key; did you mean 'train'?"),
    ({"test": "all"}, "subset.test: expected int or null, got 'all'"),
])
def test_a_bad_subset_is_a_one_line_error_naming_the_key(monkeypatch, override, expected):
    register_points_plugin(monkeypatch)
    with pytest.raises(RecipeError) as caught:
        parse_recipe({"plugin": PLUGIN_NAME, "data": {}, "model": {}, "subset": override}, "r.yaml")
    assert str(caught.value) == f"r.yaml: {expected}"


def test_training_on_a_subset_takes_an_epoch_of_the_kept_examples_and_saves_the_section(points_recipe, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run), "subset.train=64", "trainer.epochs=2"]) == 0
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert saved["subset"] == {"train": 64, "val": None, "test": None}
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 2 * 64 // 32  # two epochs of 64 examples in batches of 32, not of the 640 points


@pytest.mark.parametrize(("plugin", "key", "splits"), [
    ("image", "max_train_examples", ("train",)),
    ("text", "max_examples", ("train", "val", "test")),
])
def test_a_saved_run_with_the_old_plugin_keys_reads_them_as_the_subset(capsys, tmp_path, plugin, key, splits):
    pytest.importorskip(f"vaekit_{plugin}")
    (tmp_path / "train.txt").write_text("a sentence\n")
    data = {"image": {"name": "shapes"}, "text": {"train": str(tmp_path / "train.txt")}}[plugin]
    recipe = parse_recipe({"plugin": plugin, "data": {**data, key: 30}, "model": {}}, "old/recipe.yaml")
    assert [getattr(recipe.subset, s) for s in ("train", "val", "test")] == [30 if s in splits else None
                                                                           for s in ("train", "val", "test")]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vaekit: note: old/recipe.yaml: data.{key} is now the engine's "
                                               "subset section; read as subset.train=30")


def test_subset_is_exported_for_python_users():
    assert vaekit.SubsetConfig is SubsetConfig and vaekit.build_recipe_data is build_recipe_data
