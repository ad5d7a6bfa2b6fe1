"""Audio files a new user really has: clicks shorter than an FFT window, silence, BOM CSVs, long files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from speech_fixtures import SMALL, fsdd_root
from vaekit_speech import plugin
from vaekit_speech.audio import AudioFileError, load_audio
from vaekit_speech.conditions import parse_condition_text
from vaekit_speech.data import build_splits, utterance_mel
from vaekit_speech.data_config import SpeechDataConfig, Utterance
from vaekit_speech.features import MelFrontend

from vaekit import PluginError

RATE = 8000


def copy_fsdd(data_dir, folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.wav").write_bytes((fsdd_root(data_dir) / f"{name}.wav").read_bytes())


FSDD_SIX = ["0_jackson_5", "1_jackson_5", "2_theo_5", "3_theo_5", "4_theo_6", "5_jackson_6"]


def test_a_file_shorter_than_one_fft_window_is_padded_not_a_crash(tmp_path):
    short = tmp_path / "tick.wav"
    sf.write(str(short), (0.3 * np.random.default_rng(0).standard_normal(80)).astype(np.float32), RATE)  # 10 ms
    click = tmp_path / "click.wav"  # half a second of faint hiss, then a 5 ms click: trimming leaves 40 samples
    wave = 0.0005 * np.random.default_rng(1).standard_normal(4000)
    wave[2000:2040] = 0.5
    sf.write(str(click), wave.astype(np.float32), RATE)
    cfg = SpeechDataConfig(source="tones", sample_rate=RATE, **SMALL)  # n_fft 256: reflect padding needs > 128
    for path in (short, click):
        mel = utterance_mel(Utterance(path.stem, path), cfg)
        assert mel.shape[0] == SMALL["n_mels"] and 1 <= mel.shape[1] <= 3 and torch.isfinite(mel).all()


@pytest.mark.parametrize("frames", [1, 2, 3, 4])
def test_griffin_lim_inverts_an_utterance_of_a_few_frames(frames):
    frontend = MelFrontend(sample_rate=RATE, n_fft=512, hop_length=128, n_mels=32, griffin_lim_iters=4)
    tone = torch.sin(2 * torch.pi * 440 * torch.arange(4000) / RATE)
    mel = frontend.log_mel(tone)[:, :frames]
    wave = frontend.to_audio(mel)
    assert wave.shape == (max(frontend.samples(frames), 128),) and torch.isfinite(wave).all()


def test_silent_and_all_zero_files_are_not_boosted_but_named(tmp_path, data_dir):
    folder = tmp_path / "audio"
    copy_fsdd(data_dir, folder, FSDD_SIX)
    sf.write(str(folder / "zeros.wav"), np.zeros(4000, dtype=np.float32), RATE)
    hiss = 10 ** (-80 / 20) * np.random.default_rng(0).uniform(-1, 1, 4000)  # peak -80 dBFS
    sf.write(str(folder / "hiss.wav"), hiss.astype(np.float32), RATE, subtype="FLOAT")
    with pytest.raises(AudioFileError, match=r"hiss\.wav: silent \(peak -8\d dBFS, below -60 dBFS\)"):
        load_audio(folder / "hiss.wav", RATE, trim_db=40.0, normalize="rms")
    with pytest.raises(AudioFileError, match=r"zeros\.wav: silent \(all zeros"):
        load_audio(folder / "zeros.wav", RATE, normalize="rms")
    cfg = dict(source="folder", root=str(folder), val_fraction=0.2, test_fraction=0.2, **SMALL)
    with pytest.raises(AudioFileError, match=r"hiss\.wav: silent.*set data.skip_bad_files: true"):
        build_splits(SpeechDataConfig(**cfg), seed=0)
    train, val, test, info = build_splits(SpeechDataConfig(**cfg, skip_bad_files=True), seed=0)
    assert len(train) + len(val) + len(test) == 6
    assert [line.split(": ")[0] for line in info["skipped_files"]] == [str(folder / "hiss.wav"),
                                                                       str(folder / "zeros.wav")]
    bundle = plugin.build_data(SpeechDataConfig(**cfg, skip_bad_files=True), seed=0, assets=tmp_path)
    assert bundle.skipped == info["skipped_files"]  # what the trainer names in one line and lists in the run


def test_a_metadata_csv_with_a_utf8_byte_order_mark_is_read(tmp_path, data_dir):
    folder = tmp_path / "audio"
    copy_fsdd(data_dir, folder, FSDD_SIX)
    rows = ["file,label,speaker"] + [f"{n}.wav,{n.split('_')[0]},{n.split('_')[1]}" for n in FSDD_SIX]
    (folder / "meta.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")  # "CSV UTF-8" from a spreadsheet
    assert (folder / "meta.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    cfg = SpeechDataConfig(source="folder", root=str(folder), metadata=str(folder / "meta.csv"),
                           condition_on=["speaker"], val_fraction=0.2, test_fraction=0.2, **SMALL)
    train, val, test, info = build_splits(cfg, seed=0)
    assert info["speakers"] == ["jackson", "theo"] and len(train) + len(val) + len(test) == 6
    (folder / "latin1.csv").write_bytes("file,label,speaker\nS\xe9b.wav,1,s\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv: not UTF-8 text"):
        build_splits(SpeechDataConfig(source="folder", root=str(folder), metadata=str(folder / "latin1.csv"),
                                      **SMALL), seed=0)


def test_input_longer_than_max_seconds_is_cut_with_a_note_naming_it(tmp_path, data_dir, capsys):
    folder = tmp_path / "audio"
    copy_fsdd(data_dir, folder, FSDD_SIX)
    t = np.arange(3 * RATE) / RATE
    sf.write(str(folder / "long.wav"), (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), RATE)
    cfg = SpeechDataConfig(source="folder", root=str(folder), val_fraction=0.2, test_fraction=0.2,
                           **{**SMALL, "max_seconds": 0.9})
    build_splits(cfg, seed=0)
    err = capsys.readouterr().err
    assert err == (f"vaekit: note: 1 audio file(s) longer than data.max_seconds=0.9 s were cut to their first "
                   f"0.9 s: {folder / 'long.wav'}\n")


def test_a_condition_given_twice_is_refused():
    info = {"conditions": [{"key": "label", "name": "digit", "classes": ["0", "1"]},
                           {"key": "speaker", "name": "speaker", "classes": ["a", "b"]}]}
    assert parse_condition_text("speaker=b,digit=1", info, "--condition").tolist() == [[1, 1]]
    for text in ("speaker=a,speaker=b", "digit=0,label=1", "a,speaker=b"):
        with pytest.raises(PluginError, match="is given twice"):
            parse_condition_text(text, info, "--condition")
