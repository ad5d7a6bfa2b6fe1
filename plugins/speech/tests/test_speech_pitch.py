"""Pitch: the YIN estimator on tones of known pitch, and the pitch error of reconstructions that eval reports."""

from __future__ import annotations

import math

import pytest
import torch
from speech_fixtures import build, fsdd_config
from vaekit_speech.data_config import frontend_from
from vaekit_speech.features import MelStats
from vaekit_speech.metrics import reconstruction_pitch
from vaekit_speech.pitch import median_pitch, pitch_shift_cents, pitch_track
from vaekit_speech.sources import synthesize_tone


def tone(frequency: float, rate: int, timbre: str = "bright", seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    return synthesize_tone(frequency, timbre, seconds, rate, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("timbre", ["bright", "dark", "hollow"])
def test_yin_finds_the_pitch_of_harmonic_tones(rate, timbre):
    for frequency in (82.0, 147.0, 220.0, 330.0, 440.0):
        found = median_pitch(tone(frequency, rate, timbre), rate)
        assert abs(1200 * math.log2(found / frequency)) < 10, (frequency, found)  # a tenth of a semitone


def test_silence_and_noise_have_no_pitch():
    rate = 8000
    assert pitch_track(torch.zeros(rate), rate).isnan().all()
    noise = torch.randn(rate, generator=torch.Generator().manual_seed(0)) * 0.1
    assert pitch_track(noise, rate).isnan().float().mean() > 0.9
    track = pitch_track(torch.cat([tone(200.0, rate), torch.zeros(rate)]), rate)
    assert track.numel() == 201  # one frame every 10 ms, centred on it
    assert not track[10:90].isnan().any() and track[110:].isnan().all()


def test_a_semitone_up_is_100_cents():
    rate = 8000
    shift, error, kept = pitch_shift_cents(tone(150.0, rate), tone(150.0 * 2 ** (1 / 12), rate, seed=1), rate)
    assert shift == pytest.approx(100.0, abs=10) and error == pytest.approx(100.0, abs=10) and kept > 0.9


def test_eval_measures_the_pitch_of_reconstructions_after_griffin_lim(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir, n_fft=512, n_mels=64), tmp_path)
    frontend, stats = frontend_from(bundle.info["data"]), MelStats.from_info(bundle.info)
    mels = [stats.normalize(frontend.log_mel(tone(f, 8000, seed=k))) for k, f in enumerate((150.0, 150.0 * 2 ** 0.25))]
    mel, up = mels[0][None], mels[1][None]  # the second a minor third (300 cents) higher
    lengths = torch.tensor([mel.shape[-1]])
    same = reconstruction_pitch(model, mel, mel, lengths)
    assert same == {"pitch_shift_cents": [0.0], "pitch_error_cents": [0.0], "pitch_voiced_kept": [1.0]}
    higher = reconstruction_pitch(model, mel, up, lengths)
    assert higher["pitch_shift_cents"][0] == pytest.approx(300.0, abs=20)
    assert higher["pitch_voiced_kept"][0] > 0.3  # 64 mel bins blur the harmonics: Griffin-Lim loses some periods


def test_the_stage_report_finds_a_tones_pitch_at_every_stage(tmp_path, capsys):
    import soundfile as sf
    from vaekit_speech.pitch_report import main

    sf.write(str(tmp_path / "tone.wav"), tone(180.0, 16000).numpy(), 16000)
    assert main([str(tmp_path / "tone.wav"), "--sample-rate", "16000", "--n-mels", "80", "128"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split("\t") == ["file", "input Hz", "STFT->GL", "mel80/floor80->GL", "mel128/floor80->GL"]
    cells = row.split("\t")
    assert cells[0] == "tone.wav" and abs(float(cells[1]) - 180) < 2
    for cell in cells[2:]:  # f0 / shift in cents / share of voiced frames kept
        hz, cents, kept = cell.split("/")
        assert abs(float(hz) - 180) < 3 and abs(float(cents.rstrip("c"))) < 20 and float(kept) > 0.5, cell
