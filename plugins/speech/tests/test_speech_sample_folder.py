"""`vaekit sample RUN --per-class K --format folder`: K WAVs per digit folder that open, and one-line refusals."""

from __future__ import annotations

import pytest
import soundfile as sf
from test_speech_cli import TINY, cli


def test_per_class_folder_of_wavs(tmp_path, repo, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    run = tmp_path / "cvae"
    assert cli("train", repo / "recipes/speech/fsdd_cvae.yaml", *TINY, "data.speakers=[jackson,theo]",
               "data.max_index=6", "trainer.max_steps=2", "trainer.eval_every=2", "trainer.samples=0",
               "--out", run) == 0
    out = tmp_path / "folder"
    assert cli("sample", run, "--per-class", "2", "--format", "folder", "--condition", "speaker=theo",
               "-o", out) == 0
    folders = sorted(p.name for p in out.iterdir())
    assert folders == [str(d) for d in range(10)]  # one folder per digit, no mel PNG beside them
    for digit in folders:
        wavs = sorted((out / digit).iterdir())
        assert [p.name for p in wavs] == [p.name for p in wavs if p.suffix == ".wav"] and len(wavs) == 2
        info = sf.info(str(wavs[0]))
        assert info.samplerate == 8000 and info.frames > 0
    assert cli("sample", run, "--per-class", "3", "--condition", "digit=4", "-o", tmp_path / "four") == 0
    written = sorted(p.name for p in (tmp_path / "four").glob("*.wav"))
    assert len(written) == 3 and all("_digit-4_" in name for name in written)  # K of the one class given
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli("sample", run, "--per-class", "0", "-o", tmp_path / "zero")
    assert capsys.readouterr().err == ("vaekit sample: error: argument --per-class: expected an integer >= 1, "
                                       "got 0 (see vaekit sample --help)\n")


def test_per_class_needs_a_label_condition(tmp_path, repo, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    run = tmp_path / "speakers"
    assert cli("train", repo / "recipes/speech/fsdd_cvae.yaml", *TINY, "data.speakers=[jackson,theo]",
               "data.max_index=6", "data.condition_on=[speaker]", "trainer.max_steps=1", "trainer.eval_every=1",
               "trainer.samples=0", "--out", run) == 0
    capsys.readouterr()
    assert cli("sample", run, "--per-class", "2", "-o", tmp_path / "s") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not conditioned on a digit" in err[0] and "use -n" in err[0]
    assert not (tmp_path / "s").exists()
