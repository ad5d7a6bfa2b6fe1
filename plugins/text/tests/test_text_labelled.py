"""Labelled corpora: label<TAB>sentence files and one file per label, on real Yelp files, and their one-line errors."""

from __future__ import annotations

import pytest
import torch
from vaekit_text import TextDataError, plugin
from vaekit_text.labelled import read_labelled, read_references

import vaekit
from vaekit.config.recipe import parse_recipe


def build(tmp_path, **data):
    recipe = parse_recipe({"plugin": "text", "data": {"word_split": "whitespace", **data},
                           "subset": {"train": 300, "test": 50}})
    return plugin.build_data(recipe.data, seed=0, assets=tmp_path / "assets", subset=recipe.subset)


def test_one_file_per_label_gives_each_sentence_its_label(data_dir, tmp_path):
    yelp = data_dir / "yelp"
    bundle = build(tmp_path, train=f"{yelp}/train.{{label}}", test=f"{yelp}/test.{{label}}", labels=["0", "1"],
                   condition_on="sentiment")
    assert bundle.info["labels"] == ["0", "1"] and bundle.info["condition_on"] == "sentiment"
    negative = set((yelp / "test.0").read_text().splitlines())
    for i in range(len(bundle.test)):
        assert (bundle.test.sentences[i] in negative) == (int(bundle.test[i]["c"]) == 0)
    batch = bundle.collate([bundle.train[i] for i in range(4)])
    assert batch["c"].shape == (4, 1)


def test_a_labelled_corpus_without_a_condition_gives_classes_to_predict(data_dir, tmp_path):
    yelp = data_dir / "yelp"
    bundle = build(tmp_path, train=f"{yelp}/train.{{label}}", test=f"{yelp}/test.{{label}}", labels=["0", "1"])
    assert bundle.info["class_names"] == ["0", "1"] and "condition_on" not in bundle.info
    positive = set((yelp / "test.1").read_text().splitlines())
    for i in range(len(bundle.test)):
        assert "c" not in bundle.test[i]
        assert (bundle.test.sentences[i] in positive) == (int(bundle.test[i]["label"]) == 1)
    batch = bundle.collate([bundle.train[i] for i in range(4)])
    assert batch["label"].shape == (4,) and "c" not in batch


def test_tab_file_reads_labels_sorted_and_matches_the_per_label_files(data_dir, tmp_path):
    yelp = data_dir / "yelp"
    pairs = read_labelled(f"{yelp}/dev.{{label}}", ["0", "1"])
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("".join(f"{'pos' if label == '1' else 'neg'}\t{s}\n" for label, s in pairs), encoding="utf-8")
    bundle = build(tmp_path, train=str(tsv), condition_on="sentiment")
    assert bundle.info["labels"] == ["neg", "pos"]
    assert read_labelled(str(tsv), [])[:3] == [("neg" if label == "0" else "pos", s) for label, s in pairs[:3]]
    assert all(int(bundle.train[i]["c"]) in (0, 1) for i in range(len(bundle.train)))


def test_references_pair_each_source_with_its_rewrite(data_dir):
    references = read_references(f"{data_dir}/yelp/reference.{{label}}", ["0", "1"])
    assert len(references["0"]) == len(references["1"]) == 500
    assert references["0"][0][0] == (data_dir / "yelp" / "test.0").read_text().splitlines()[0]


def test_bad_labelled_corpora_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tthe cat sat\nb\tthe dog ran\nthe bird flew away\n", encoding="utf-8")
    with pytest.raises(TextDataError, match=r"bad\.tsv:3: no label column; expected label<TAB>sentence"):
        read_labelled(str(bad), [])
    good = tmp_path / "good.tsv"
    good.write_text("a\tthe cat sat\nb\tthe dog ran\n", encoding="utf-8")
    test = tmp_path / "test.tsv"
    test.write_text("a\tthe cat sat\nc\tthe dog ran\n", encoding="utf-8")
    with pytest.raises(TextDataError, match=r"test\.tsv:2: unknown label 'c'; expected one of a, b"):
        build(tmp_path, train=str(good), test=str(test), condition_on="author")
    with pytest.raises(TextDataError, match=r"good\.tsv: label 'z' has no sentences"):
        build(tmp_path, train=str(good), labels=["a", "b", "z"], condition_on="author")
    (tmp_path / "x.a").write_text("the cat sat\n", encoding="utf-8")
    (tmp_path / "x.b").write_text("\n\n", encoding="utf-8")
    with pytest.raises(TextDataError, match=r"x\.b: label 'b' has no sentences"):
        build(tmp_path, train=f"{tmp_path}/x.{{label}}", labels=["a", "b"], condition_on="author")
    with pytest.raises(vaekit.RecipeError, match=r"train: .*x\.c does not exist"):
        build(tmp_path, train=f"{tmp_path}/x.{{label}}", labels=["a", "c"], condition_on="author")
    with pytest.raises(vaekit.RecipeError, match=r"labels: the \{label\} in train needs the label values"):
        build(tmp_path, train=f"{tmp_path}/x.{{label}}", condition_on="author")


def test_labels_ride_through_a_subset_in_order(data_dir, tmp_path):
    yelp = data_dir / "yelp"
    bundle = build(tmp_path, train=f"{yelp}/train.{{label}}", labels=["0", "1"], condition_on="sentiment")
    labels = torch.tensor([int(bundle.train[i]["c"]) for i in range(len(bundle.train))])
    assert 0 < labels.float().mean() < 1  # both sentiments survive the subset
