"""`vaekit sample --per-class K --format tsv`: a text CVAE's K sentences per label as a label<TAB>sentence corpus;
--format folder (the image and speech plugins' class folders) and --per-class without labels are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from text_fixtures import SENTENCES, train_tiny_run
from vaekit_text.labelled import read_labelled

from vaekit.cli import main


def test_format_folder_is_one_line_for_text(tmp_path, capsys):
    run = train_tiny_run(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["sample", str(run), "--per-class", "3", "--format", "folder", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("vaekit sample: error: ") and "--format" in err
    assert not (tmp_path / "s").exists()


def train_tiny_cvae(folder: Path) -> Path:
    """A text CVAE trained 2 steps on a tiny label<TAB>sentence corpus (labels pos and neg)."""
    lines = [f"{'pos' if i % 2 else 'neg'}\t{sentence}" for i, sentence in enumerate(SENTENCES * 4)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in {"train": lines, "val": lines[:8], "test": lines[8:16]}.items():
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    recipe = folder / "tiny.yaml"
    recipe.write_text(f"plugin: text\ndata: {{train: {folder / 'train.tsv'}, val: {folder / 'val.tsv'}, "
                      f"test: {folder / 'test.tsv'}, max_length: 16, condition_on: sentiment}}\n"
                      "model: {embed_dim: 16, hidden_dim: 32, latent_dim: 4}\n"
                      "trainer: {max_steps: 2, batch_size: 8, progress: false, samples: 0}\neval: {iw_samples: 2}\n")
    run = folder / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    return run


def test_per_class_tsv_is_a_labelled_corpus(tmp_path, capsys):
    run = train_tiny_cvae(tmp_path)
    out = tmp_path / "s"
    assert main(["sample", str(run), "--per-class", "3", "--format", "tsv", "--out", str(out)]) == 0
    pairs = read_labelled(str(out / "samples.tsv"), ["neg", "pos"])  # what data.train reads
    assert [label for label, _ in pairs] == ["neg"] * 3 + ["pos"] * 3
    assert main(["sample", str(run), "--per-class", "2", "--condition", "pos", "--out", str(tmp_path / "p")]) == 0
    assert len((tmp_path / "p" / "samples.txt").read_text().splitlines()) == 2  # K under the one label given
    capsys.readouterr()
    plain = train_tiny_run(tmp_path / "plain")
    capsys.readouterr()
    assert main(["sample", str(plain), "--per-class", "2", "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this text model is unconditional" in err[0]
    assert not (tmp_path / "u").exists()
