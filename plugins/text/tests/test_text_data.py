"""Sentence files -> datasets: formats, empty lines, length limits, padding, and the documented errors."""

from __future__ import annotations

import json

import pytest
import torch
from text_fixtures import SENTENCES, write_corpus  # noqa: F401 (autouse fixture)
from vaekit_text import TextDataConfig, TextDataError, plugin
from vaekit_text.data import read_sentences

import vaekit
from vaekit.config.recipe import parse_recipe
from vaekit.core.batch import tile


def test_lines_folder_and_jsonl_give_the_same_sentences(tmp_path):
    (tmp_path / "one.txt").write_text("\n".join(SENTENCES[:3]) + "\n\n   \n", encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text(SENTENCES[0] + "\n", encoding="utf-8")
    (folder / "b.txt").write_text("\n" + "\n".join(SENTENCES[1:3]), encoding="utf-8")
    (folder / "ignored.csv").write_text("not,text\n")
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"text": s, "id": i}) for i, s in enumerate(SENTENCES[:3]))
                                      + "\n\n")
    expected = SENTENCES[:3]
    assert read_sentences(tmp_path / "one.txt") == expected
    assert read_sentences(folder) == expected
    assert read_sentences(tmp_path / "c.jsonl") == expected


def test_undecodable_bytes_name_file_and_line(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("first line\nsecond line\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(TextDataError, match=r"latin1\.txt:3: not valid UTF-8 \(byte 0xe9"):
        read_sentences(bad)
    assert issubclass(TextDataError, ValueError)


def test_bad_jsonl_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "cut off\n')
    with pytest.raises(TextDataError, match=r"bad\.jsonl:2: not valid JSON"):
        read_sentences(path)
    path.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(TextDataError, match=r"bad\.jsonl:2: expected a JSON object with a 'text' field"):
        read_sentences(path)
    path.write_text('{"text": 3}\n')
    with pytest.raises(TextDataError, match=r"bad\.jsonl:1: field 'text' must be a string"):
        read_sentences(path)


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(TextDataError, match="no such file"):
        read_sentences(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TextDataError, match="folder holds no .txt files"):
        read_sentences(tmp_path / "empty")
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    with pytest.raises(ValueError, match=r"blank\.txt: no sentences"):
        plugin.build_data(TextDataConfig(train=str(tmp_path / "blank.txt")), seed=0, assets=tmp_path / "a")


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(vaekit.RecipeError, match=r"data: train: .*nope\.txt does not exist"):
        parse_recipe({"plugin": "text", "data": {"train": str(tmp_path / "nope.txt")}})
    paths = write_corpus(tmp_path)
    with pytest.raises(vaekit.RecipeError, match=r"data\.long_lines: expected one of 'filter', 'truncate'"):
        parse_recipe({"plugin": "text", "data": {"train": str(paths["train"]), "long_lines": "cut"}})
    with pytest.raises(vaekit.RecipeError, match="hf_tokenizer"):
        parse_recipe({"plugin": "text", "data": {"train": str(paths["train"]), "tokenizer": "hf"}})


@pytest.mark.parametrize("mode", ["filter", "truncate"])
def test_long_lines_are_filtered_or_truncated_and_counted(tmp_path, mode, caplog):
    path = tmp_path / "train.txt"
    path.write_text("a b c\n" + " ".join(["w"] * 12) + "\nd e\n")
    with caplog.at_level("WARNING", logger="vaekit.text"):
        bundle = plugin.build_data(TextDataConfig(train=str(path), max_length=6, long_lines=mode), seed=0,
                                   assets=tmp_path / "assets")
    report = bundle.info["lengths"]["train"]
    if mode == "filter":
        assert (len(bundle.train), report["filtered"], report["truncated"]) == (2, 1, 0)
    else:
        assert (len(bundle.train), report["filtered"], report["truncated"]) == (3, 0, 1)
        assert len(bundle.train[1]["x"]["tokens"]) == 6 and bundle.train[1]["x"]["tokens"][-1] == 3  # ends in <eos>
    assert "longer than 6 tokens" in caplog.text


def test_collate_pads_with_pad_id_and_survives_tile(tmp_path):
    paths = write_corpus(tmp_path)
    bundle = plugin.build_data(TextDataConfig(train=str(paths["train"]), test=str(paths["test"])), seed=0,
                               assets=tmp_path / "assets")
    info = bundle.info
    batch = bundle.collate([bundle.train[i] for i in (0, 1, 2)])["x"]
    lengths = torch.tensor([len(SENTENCES[i].split()) + 1 for i in (0, 1, 2)])
    assert torch.equal(batch["lengths"], lengths) and torch.equal(batch["n_words"], lengths)
    assert batch["tokens"].shape == (3, int(lengths.max()))
    for row, n in zip(batch["tokens"], lengths, strict=True):
        assert row[n - 1] == info["eos_id"] and (row[n:] == info["pad_id"]).all()
    tiled = tile(batch, 4)
    assert tiled["tokens"].shape == (12, batch["tokens"].shape[1]) and torch.equal(tiled["lengths"][3:6], lengths)
    assert (tmp_path / "assets" / "tokenizer.json").is_file() and (tmp_path / "assets" / "vocab.txt").is_file()


def test_saved_tokenizer_is_reused(tmp_path):
    paths = write_corpus(tmp_path)
    cfg = TextDataConfig(train=str(paths["train"]), tokenizer="sentencepiece", vocab_size=40)
    first = plugin.build_data(cfg, seed=0, assets=tmp_path / "assets")
    model_file = (tmp_path / "assets" / "spm.model").read_bytes()
    again = plugin.build_data(cfg, seed=1, assets=tmp_path / "assets")  # a resumed run: same ids whatever the seed
    assert (tmp_path / "assets" / "spm.model").read_bytes() == model_file
    assert torch.equal(first.train[5]["x"]["tokens"], again.train[5]["x"]["tokens"])
    assert first.info["tokenizer"] == "sentencepiece"
