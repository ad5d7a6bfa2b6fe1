"""Text CVAEs on a labelled corpus: the decoder reads the label, the CLI rewrites under another one, and `vaekit
eval` scores transfers (classifier accuracy, sacrebleu BLEU to human rewrites, self-BLEU, LM perplexity)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sacrebleu
from vaekit_text.labelled import parse_label, read_references
from vaekit_text.scorers import Vocabulary, words
from vaekit_text.transfer import target_label

import vaekit
from vaekit.cli import main as vaekit_main

REPO = Path(__file__).resolve().parents[3]
TINY = ["model.embed_dim=16", "model.hidden_dim=32", "model.encoder_hidden_dim=16", "model.latent_dim=8",
        "model.condition_dim=4", "trainer.batch_size=16", "trainer.max_steps=6", "trainer.eval_every=6",
        "trainer.eval_batches=1", "trainer.checkpoint_every=100", "trainer.samples=2", "trainer.progress=false",
        "trainer.threads=1", "eval.batch_size=50"]


def run_cli(args: list, capsys) -> tuple[int, str, str]:
    code = vaekit_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_words_split_as_the_yelp_corpus_does():
    assert words("It didn't taste watered down at all.") == ["it", "did", "n't", "taste", "watered", "down", "at",
                                                              "all", "."]
    assert words("ever since joes has changed hands it 's just gotten worse") == \
        "ever since joes has changed hands it 's just gotten worse".split()
    vocab = Vocabulary(["a b b", "b c", "a"], size=10)
    assert vocab.ids == {"b": 3, "a": 4}  # by frequency; c occurs once: <unk>
    assert vocab.encode("b c zebra") == [3, 1, 1]


def test_targets_and_condition_text():
    assert [target_label(i, 2) for i in (0, 1)] == [1, 0]
    assert [target_label(i, 3) for i in (0, 1, 2)] == [1, 2, 0]
    info = {"condition_on": "sentiment", "labels": ["0", "1"]}
    assert parse_label("sentiment=1", info) == 1 and parse_label(" 0 ", info) == 0
    with pytest.raises(ValueError, match=r"unknown sentiment '2'; expected one of 0, 1"):
        parse_label("sentiment=2", info)
    with pytest.raises(ValueError, match=r"conditioned on 'sentiment'; expected sentiment=VALUE"):
        parse_label("author=1", info)
    with pytest.raises(vaekit.PluginError, match="unconditional"):
        parse_label("1", {})


@pytest.mark.slow
def test_yelp_cvae_rewrites_and_scores_against_sacrebleu(data_dir, tmp_path, monkeypatch, capsys):
    """A few steps of the Yelp recipe; the copy baseline's BLEU is sacrebleu's on the same files."""
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    run = tmp_path / "run"
    code, _, err = run_cli(["train", REPO / "recipes/text/yelp_sentiment.yaml", "--out", run, *TINY,
                            "subset.train=600", "subset.val=50", "subset.test=50"], capsys)
    assert code == 0, err
    assert "adversary_ce" in (run / "metrics.jsonl").read_text()  # the recipe's adversary trains
    code, out, err = run_cli(["reconstruct", run, "--text", "the food was cold .", "--source", "sentiment=0",
                              "--condition", "sentiment=1", "--no-print"], capsys)
    assert code == 0, err
    text = (run / "outputs" / "reconstruct" / "reconstructions.txt").read_text()
    assert text.startswith("input (sentiment=0): the food was cold .\nreconstruction (sentiment=1): ")
    code, _, err = run_cli(["sample", run, "-n", "3", "--condition", "sentiment=1", "--no-print"], capsys)
    assert code == 0 and len((run / "outputs" / "sample" / "samples.txt").read_text().splitlines()) == 3
    code, _, err = run_cli(["interpolate", run, "--text", "the food was cold .", "great staff !", "--steps", "2",
                            "--no-print"], capsys)
    assert code == 0 and "decoded as sentiment=0" in (run / "outputs" / "interpolate" / "interpolation.txt").read_text()
    code, _, err = run_cli(["reconstruct", run, "--text", "the food was cold ."], capsys)
    assert code == 2 and "give --condition sentiment=VALUE" in err and err.count("\n") == 1
    code, _, err = run_cli(["sample", run, "-n", "3", "--condition", "sentiment=positive"], capsys)
    assert code == 2 and "unknown sentiment 'positive'; expected one of 0, 1" in err

    from vaekit_text.transfer import transfer_report

    model, text_plugin = vaekit.load(run)
    scores, rows = transfer_report(text_plugin, model, cache_dir=tmp_path / "cache", limit=None,
                                   scorer_sentences=800)
    references = read_references(f"{data_dir}/yelp/reference.{{label}}", ["0", "1"])
    sources = [s for label in ("0", "1") for s, _ in references[label]]
    rewrites = [r for label in ("0", "1") for _, r in references[label]]
    assert scores["transfer_examples"] == len(rows) == 1000
    assert scores["copy_bleu"] == pytest.approx(sacrebleu.corpus_bleu(sources, [rewrites]).score, abs=1e-9)
    assert scores["copy_self_bleu"] == pytest.approx(100.0)
    outputs = [row["output"] for row in rows]
    assert scores["transfer_bleu"] == pytest.approx(sacrebleu.corpus_bleu(outputs, [rewrites]).score, abs=1e-9)
    assert [row["target"] for row in rows[:2]] == ["1", "1"] and rows[-1]["target"] == "0"
    assert 0 <= scores["same_label_self_bleu"] <= 100
    assert 0 <= scores["transfer_accuracy"] <= 1 and scores["transfer_ppl"] > 1 and scores["reference_ppl"] > 1
    assert sorted((tmp_path / "cache").glob("*.safetensors"))  # both scorers cached
    again, _ = transfer_report(text_plugin, model, cache_dir=tmp_path / "cache", limit=40, scorer_sentences=800)
    assert again["classifier_test_accuracy"] == pytest.approx(
        transfer_report(text_plugin, model, cache_dir=tmp_path / "cache", limit=40,
                        scorer_sentences=800)[0]["classifier_test_accuracy"])


@pytest.mark.slow
def test_newcomer_corpus_news_and_reviews_in_one_tab_file(data_dir, tmp_path, capsys):
    """A labelled corpus no recipe has seen: PTB news and Yelp reviews as two labels in one label<TAB>sentence file,
    trained from a recipe written for it, then a news sentence rewritten as a review and `vaekit eval`'s scores."""
    rng = random.Random(0)
    news = [s.strip() for s in (data_dir / "ptb" / "ptb.valid.txt").read_text().splitlines() if 3 < len(s.split()) < 16]
    reviews = (data_dir / "yelp" / "dev.0").read_text().splitlines() + \
        (data_dir / "yelp" / "dev.1").read_text().splitlines()
    rng.shuffle(news)
    rng.shuffle(reviews)
    for split, (start, stop) in {"train": (0, 400), "test": (400, 440)}.items():
        lines = [f"news\t{s}" for s in news[start:stop]] + [f"review\t{s}" for s in reviews[start:stop]]
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = tmp_path / "genre.yaml"
    recipe.write_text(f"plugin: text\ndata:\n  train: {tmp_path}/train.tsv\n  test: {tmp_path}/test.tsv\n"
                      "  condition_on: genre\n  word_split: whitespace\n  max_length: 20\n"
                      "latent:\n  condition_adversary: 1.0\neval:\n  iw_samples: 0\n", encoding="utf-8")
    run = tmp_path / "run"
    code, _, err = run_cli(["train", recipe, "--out", run, *TINY], capsys)
    assert code == 0, err
    code, out, err = run_cli(["reconstruct", run, "--text", news[0], "--condition", "genre=review"], capsys)
    assert code == 0 and "reconstruction (genre=review):" in out, err
    code, out, err = run_cli(["eval", run, "--scorer-cache", tmp_path / "cache", "--recon-examples", "0"], capsys)
    assert code == 0, err
    metrics = json.loads((run / "eval-test.json").read_text())
    assert metrics["transfer_examples"] == 80 and 0 <= metrics["transfer_accuracy"] <= 1
    assert metrics["copy_self_bleu"] == pytest.approx(100.0)
    assert "transfer_bleu" not in metrics  # no human rewrites to score against
    code, _, err = run_cli(["sample", run, "-n", "2", "--condition", "genre=poem"], capsys)
    assert code == 2 and "unknown genre 'poem'; expected one of news, review" in err


def test_an_unconditional_text_model_takes_no_condition(tmp_path):
    from text_fixtures import build
    from vaekit_text import plugin

    _, model, _ = build(tmp_path)
    with pytest.raises(vaekit.PluginError, match="unconditional"):
        plugin.parse_condition("sentiment=1", model)
