"""Text inputs a new user really gives: long sentences, sentences ending in .txt, odd corpora, pickles."""

from __future__ import annotations

import logging
import pickle

import pytest
import torch
import yaml
from text_fixtures import SENTENCES, build, tiny_model_config, train_tiny_run, write_corpus
from vaekit_text import TextDataConfig, plugin
from vaekit_text.data import read_lines
from vaekit_text.tokenizers import join_punctuation, load_tokenizer, split_punctuation

import vaekit
from vaekit.cli import main
from vaekit.runs import build_model


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("textrun"))


def test_a_sentence_longer_than_a_file_name_is_a_sentence(text_run, tmp_path, capsys):
    long = " ".join(SENTENCES * 5)  # 300+ bytes: Path.is_file raised OSError: File name too long
    assert len(long.encode()) > 255
    out = tmp_path / "r"
    assert main(["reconstruct", str(text_run), long, "-o", str(out), "--no-print"]) == 0
    assert lines(out / "reconstructions.txt")[0] == f"input:          {long}"
    assert main(["interpolate", str(text_run), long, SENTENCES[0], "-o", str(tmp_path / "i"), "--no-print"]) == 0
    assert lines(tmp_path / "i" / "interpolation.txt")[0] == f"from: {long}"


def test_a_sentence_ending_in_txt_is_a_sentence_and_text_and_file_force_the_reading(text_run, tmp_path,
                                                                                      monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sentence = "please read notes.txt"
    out = tmp_path / "r"
    assert main(["reconstruct", str(text_run), sentence, "-o", str(out), "--no-print"]) == 0
    assert lines(out / "reconstructions.txt")[0] == f"input:          {sentence}"
    (tmp_path / "notes.txt").write_text(f"{SENTENCES[1]}\n{SENTENCES[2]}\n", encoding="utf-8")
    assert main(["reconstruct", str(text_run), "notes.txt", "-o", str(out), "--no-print"]) == 0  # an existing file
    assert [ln for ln in lines(out / "reconstructions.txt") if ln.startswith("input:")] == \
        [f"input:          {SENTENCES[1]}", f"input:          {SENTENCES[2]}"]
    assert main(["reconstruct", str(text_run), "--text", "notes.txt", "-o", str(out), "--no-print"]) == 0
    assert lines(out / "reconstructions.txt")[0] == "input:          notes.txt"
    capsys.readouterr()
    assert main(["reconstruct", str(text_run), "--file", sentence, "-o", str(out)]) == 2
    assert capsys.readouterr().err == (f"vaekit: error: '{sentence}': no such file (--file reads one sentence per "
                                       "line; use --text for a sentence)\n")


def test_reconstruct_help_documents_the_input_rule(text_run, capsys):
    with pytest.raises(SystemExit):
        main(["reconstruct", str(text_run), "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--text" in help_text and "--file" in help_text
    assert "an input that names an existing file is read as one sentence per line; anything else is a sentence" \
        in help_text


def test_a_corpus_whose_lines_all_exceed_sentencepieces_limit_names_file_and_limit(tmp_path):
    train = tmp_path / "long.txt"
    train.write_text("\n".join(" ".join(["word"] * 1000) for _ in range(5)) + "\n", encoding="utf-8")  # 4999 bytes
    cfg = TextDataConfig(train=str(train), tokenizer="sentencepiece", vocab_size=50, max_length=16)
    with pytest.raises(ValueError) as error:
        plugin.build_data(cfg, seed=0, assets=tmp_path / "assets")
    assert str(error.value) == (f"{train}: every line is longer than SentencePiece's limit of 4192 bytes, so it has "
                                "nothing to learn from; split the text into sentences, one per line")


@pytest.mark.parametrize("tokenizer, asked", [("word", 500), ("sentencepiece", 500)])
def test_a_vocab_size_the_corpus_cannot_support_is_said(tmp_path, caplog, tokenizer, asked):
    paths = write_corpus(tmp_path / "corpus")
    cfg = TextDataConfig(train=str(paths["train"]), tokenizer=tokenizer, vocab_size=asked, max_length=16)
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        bundle = plugin.build_data(cfg, seed=0, assets=tmp_path / "assets")
    real = bundle.info["vocab_size"]
    assert real < asked
    messages = [r.getMessage() for r in caplog.records if "data.vocab_size" in r.getMessage()]
    assert messages == [f"data.vocab_size={asked}: {paths['train']} supports only {real} {tokenizer} tokenizer "
                        f"entries (specials included); the model uses {real} (recorded in the run's recipe.yaml)"]
    assert cfg.vocab_size == real  # what the run's resolved recipe records


def test_words_a_word_vocabulary_turns_into_unk_are_counted_and_said(tmp_path, caplog):
    train = tmp_path / "train.txt"  # 10 words: "<unk>" (PTB's own spelling) twice, "rare" and "odd" once each
    train.write_text("the cat <unk> sat\nthe cat <unk> ran\nrare odd\n", encoding="utf-8")
    cfg = TextDataConfig(train=str(train), tokenizer="word", vocab_size=8, max_length=16)
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        plugin.build_data(cfg, seed=0, assets=tmp_path / "small")  # keeps the, cat, odd, ran (ties go alphabetically)
    assert [r.getMessage() for r in caplog.records] == [
        "words the tokenizer writes <unk> (text outside its vocabulary): train 20.00%",
        f"train split ({train}): 20.0% of its words fall outside the vocabulary (data.vocab_size=8, fitted on the "
        "training split) and become <unk>; raise data.vocab_size, lower data.min_freq or use "
        "data.tokenizer=sentencepiece"]
    caplog.clear()
    cfg = TextDataConfig(train=str(train), tokenizer="word", vocab_size=10, max_length=16)
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        plugin.build_data(cfg, seed=0, assets=tmp_path / "whole")  # every word kept: the literal <unk> is no loss
    assert not caplog.records


def test_punctuation_is_split_off_words_and_every_splits_unknown_share_is_said(tmp_path, caplog):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("The moon rose over the hill.\nThe sun set over the sea!\n" * 3, encoding="utf-8")
    test.write_text("The moon set over the sea.\nThe sun rose over the hill!\n", encoding="utf-8")
    cfg = TextDataConfig(train=str(train), val=str(train), test=str(test), tokenizer="word", word_split="whitespace",
                         vocab_size=13, max_length=16)  # every training word
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        bundle = plugin.build_data(cfg, seed=0, assets=tmp_path / "whitespace")
    assert [r.getMessage() for r in caplog.records] == [
        "words the tokenizer writes <unk> (text outside its vocabulary): train 0.00%, val 0.00%, test 16.67%",
        f"test split ({test}): 16.7% of its words fall outside the vocabulary (data.vocab_size=13, fitted on the "
        "training split) and become <unk>; words the training split lacks: data.tokenizer=sentencepiece spells them "
        'in pieces; data.word_split=whitespace keeps punctuation in words ("moon!" is not "moon"): '
        "data.word_split=punctuation splits it off"]
    assert bundle.info["unk_rates"] == pytest.approx({"train": 0.0, "val": 0.0, "test": 2 / 12})
    caplog.clear()
    cfg.word_split, cfg.vocab_size = "punctuation", 15  # the default split; ". !" are words now
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        bundle = plugin.build_data(cfg, seed=0, assets=tmp_path / "punctuation")
    assert not caplog.records
    assert bundle.info["unk_rates"] == {"train": 0.0, "val": 0.0, "test": 0.0}
    tokenizer = load_tokenizer(tmp_path / "punctuation")  # the split is saved with the vocabulary
    assert tokenizer.decode(bundle.test.tokens[0].tolist()) == "The moon set over the sea."
    assert tokenizer.encode("the sea!") == tokenizer.encode("the sea !")


def test_the_punctuation_split_leaves_ptb_as_it_is(data_dir):
    """PTB is tokenised already: every recipe's figures on it stay those of its whitespace words."""
    for split in ("train", "valid", "test"):
        for line in read_lines(data_dir / "ptb" / f"ptb.{split}.txt"):
            assert split_punctuation(line) == line.split()
            assert join_punctuation(line.split()) == line


def test_the_real_vocab_size_is_recorded_and_resume_still_matches(tmp_path):
    paths = write_corpus(tmp_path / "corpus")
    recipe = tmp_path / "small.yaml"
    recipe.write_text(f"plugin: text\nseed: 0\ndata: {{train: {paths['train']}, val: {paths['val']}, "
                      f"test: {paths['test']}, vocab_size: 500, max_length: 16}}\n"
                      "model: {latent_dim: 4, embed_dim: 8, hidden_dim: 8}\n"
                      "trainer: {max_steps: 2, batch_size: 4, progress: false, samples: 0, eval_batches: 1}\n")
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    saved = yaml.safe_load((run / "recipe.yaml").read_text())["data"]["vocab_size"]
    model, _ = vaekit.load(run)
    assert saved == model.config["info"]["vocab_size"] < 500
    # The user's own recipe (vocab_size 500) still resumes the run: the data decides the same size again.
    assert main(["train", str(recipe), "--out", str(run), "--resume", "trainer.max_steps=3"]) == 0


class Planted:
    """Unpickling this runs code: the marker file proves whether a loader reached pickle."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pretrained_encoder_is_read_from_safetensors_only(tmp_path):
    from transformers import BertConfig, BertModel

    bert = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=32), add_pooling_layer=False)
    folder = tmp_path / "bert"
    bert.config.save_pretrained(str(folder))  # config.json, and below pytorch_model.bin: a pickle with a payload
    marker = tmp_path / "pickle-ran"
    Planted.marker = marker
    state = dict(bert.state_dict())
    state["payload"] = Planted()
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump(state, f)
    assert not list(folder.glob("*.safetensors"))
    with pytest.raises(ValueError) as error:
        build(tmp_path, "transformer", pretrained_encoder=str(folder))
    assert str(error.value) == (f"model.pretrained_encoder: {folder} has no .safetensors weights; vaekit never loads "
                                "pickled weights (pytorch_model.bin): convert them to safetensors first")
    assert not marker.exists()

    bert.save_pretrained(str(folder))  # now with model.safetensors beside the pickle: only the safetensors is read
    bundle, model, _ = build(tmp_path, "transformer", pretrained_encoder=str(folder))
    torch.testing.assert_close(model.encoder.bert.embeddings.word_embeddings.weight,
                               bert.embeddings.word_embeddings.weight)
    assert not marker.exists()
    saved = vaekit.save_pretrained(model, tmp_path / "pretrained")
    vaekit.load(saved)  # the folder still exists where the model is loaded: still safetensors only
    assert not marker.exists()
    assert build_model(plugin, tiny_model_config("transformer", pretrained_encoder=str(folder)), bundle.info,
                       tmp_path / "assets")


@pytest.mark.parametrize("verb", ["reconstruct", "sample", "interpolate", "encode", "traverse"])
def test_an_argument_that_is_not_utf8_is_one_line_naming_its_byte(text_run, tmp_path, capsys, verb):
    latin1 = "caf\udce9"  # what Python makes of the bytes caf\xe9 (Latin-1 "café") in argv
    argv = {"reconstruct": [latin1], "sample": ["--around", latin1], "interpolate": [latin1, SENTENCES[0]],
            "encode": [latin1, "-o", str(tmp_path / "codes.npy")], "traverse": ["--input", latin1]}[verb]
    out = [] if verb == "encode" else ["-o", str(tmp_path / "out")]
    assert main([verb, str(text_run), *argv, *out]) == 2
    assert capsys.readouterr().err == ("vaekit: error: 'caf\\xe9': not valid UTF-8 (byte 0xe9 at byte 4); give "
                                       "sentences as UTF-8 text (e.g. convert them with iconv -t UTF-8)\n")


def test_a_missing_path_an_empty_file_and_a_cut_sentence_are_said(text_run, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    out = ["-o", str(tmp_path / "r"), "--no-print"]
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        assert main(["reconstruct", str(text_run), "missing.txt", "data/notes", "please read notes.txt", *out]) == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"'{name}': no such file, so it is read as a sentence (--text: every input is a sentence; --file: every "
        "input must be a file)" for name in ("missing.txt", "data/notes")]  # a sentence with spaces is a sentence
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        assert main(["reconstruct", str(text_run), "--text", "missing.txt", *out]) == 0
    assert not caplog.records

    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    capsys.readouterr()
    assert main(["reconstruct", str(text_run), "empty.txt", *out]) == 2
    assert capsys.readouterr().err == ("vaekit: error: no sentences given: 'empty.txt' holds no sentence (every line "
                                       "is empty); pass sentences, or files with one sentence per line\n")

    (tmp_path / "long.txt").write_text(" ".join(["the cat sat"] * 40) + "\n" + SENTENCES[1] + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="vaekit.text"):
        assert main(["reconstruct", str(text_run), "long.txt", *out]) == 0
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("1 of 2 input sentences are longer than the model's 16 tokens (data.max_length, <eos> "
                              "included) and were cut to their first 15 tokens; the first has 120 tokens: 'the cat "
                              "sat the cat sat")
