"""Audio in and out: resampling and mixdown, bad files, trimming, loudness, mel features and WAVs written back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from speech_fixtures import SMALL, fsdd_root
from vaekit_speech.audio import AudioFileError, load_audio, normalize_loudness, trim_silence, write_audio
from vaekit_speech.data import build_splits
from vaekit_speech.data_config import SpeechDataConfig
from vaekit_speech.features import MelFrontend, MelStats


def sine(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def peak_frequency(wave: torch.Tensor, rate: int) -> float:
    spectrum = torch.fft.rfft(wave).abs()
    return float(spectrum.argmax()) * rate / wave.numel()


def test_a_44k_stereo_file_is_mixed_down_and_resampled(tmp_path):
    left = sine(440.0, 0.5, 44_100)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)  # right channel silent: the mix halves the level
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, 44_100)
    wave = load_audio(path, sample_rate=8000)
    assert wave.dim() == 1
    assert abs(wave.numel() - 4000) <= 2
    assert abs(peak_frequency(wave, 8000) - 440.0) < 5.0
    assert wave.abs().max().item() == pytest.approx(0.25, abs=0.02)


def test_flac_and_ogg_read_like_wav(tmp_path):
    tone = sine(300.0, 0.4, 16_000)
    for name in ("tone.flac", "tone.ogg"):
        sf.write(str(tmp_path / name), tone, 16_000)
        wave = load_audio(tmp_path / name, sample_rate=8000)
        assert abs(wave.numel() - 3200) <= 2
        assert abs(peak_frequency(wave, 8000) - 300.0) < 5.0


def test_truncated_wav_is_an_error_naming_the_file(tmp_path, data_dir):
    original = (fsdd_root(data_dir) / "0_jackson_0.wav").read_bytes()
    truncated = tmp_path / "0_jackson_0.wav"
    truncated.write_bytes(original[: len(original) // 2])
    with pytest.raises(AudioFileError, match=r"0_jackson_0\.wav: truncated WAV"):
        load_audio(truncated, sample_rate=8000)
    assert issubclass(AudioFileError, ValueError)


def test_non_audio_file_is_an_error_naming_the_file(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("these are not samples\n" * 20)
    with pytest.raises(ValueError, match=r"notes\.wav: not a readable audio file"):
        load_audio(fake, sample_rate=8000)


def test_folder_with_a_bad_file_fails_or_skips_and_lists_it(tmp_path, data_dir):
    root = fsdd_root(data_dir)
    folder = tmp_path / "audio"
    folder.mkdir()
    for name in ["0_jackson_5", "1_jackson_5", "2_theo_5", "3_theo_5", "4_theo_6", "5_jackson_6"]:
        (folder / f"{name}.wav").write_bytes((root / f"{name}.wav").read_bytes())
    good = (root / "6_theo_5.wav").read_bytes()
    (folder / "broken.wav").write_bytes(good[: len(good) // 3])
    cfg = dict(source="folder", root=str(folder), val_fraction=0.2, test_fraction=0.2, **SMALL)
    with pytest.raises(ValueError, match=r"broken\.wav"):
        build_splits(SpeechDataConfig(**cfg), seed=0)
    train, val, test, info = build_splits(SpeechDataConfig(**cfg, skip_bad_files=True), seed=0)
    assert len(train) + len(val) + len(test) == 6
    assert len(info["skipped_files"]) == 1 and "broken.wav" in info["skipped_files"][0]


def test_folder_metadata_csv_gives_labels_and_speakers(tmp_path, data_dir):
    root = fsdd_root(data_dir)
    folder = tmp_path / "audio"
    folder.mkdir()
    rows = ["file,label,speaker"]
    for i, (digit, speaker) in enumerate([("0", "jackson"), ("1", "theo")] * 4):
        name = f"clip{i}.wav"
        (folder / name).write_bytes((root / f"{digit}_{speaker}_{10 + i}.wav").read_bytes())
        rows.append(f"{name},{digit},{speaker}")
    (folder / "meta.csv").write_text("\n".join(rows) + "\n")
    cfg = SpeechDataConfig(source="folder", root=str(folder), metadata=str(folder / "meta.csv"),
                           condition_on=["speaker"], val_fraction=0.25, test_fraction=0.25, **SMALL)
    train, _, _, info = build_splits(cfg, seed=0)
    assert info["labels"] == ["0", "1"] and info["speakers"] == ["jackson", "theo"]
    assert info["conditions"] == [{"key": "speaker", "name": "speaker", "classes": ["jackson", "theo"]}]
    item = train[0]
    assert item["c"].tolist() == [item["speaker"].item()]


def test_trim_and_loudness_normalisation():
    rate = 8000
    tone = torch.from_numpy(sine(200.0, 0.3, rate))
    padded = torch.cat([torch.zeros(rate // 2), tone, torch.zeros(rate // 2)])
    trimmed = trim_silence(padded, rate, top_db=40.0)
    assert abs(trimmed.numel() - tone.numel()) < 0.05 * rate
    level = normalize_loudness(tone, "rms", -20.0).pow(2).mean().sqrt()
    assert 20 * math.log10(level) == pytest.approx(-20.0, abs=0.01)
    assert normalize_loudness(tone, "peak", -3.0).abs().max().item() == pytest.approx(10 ** (-3 / 20), rel=1e-4)


def test_mel_to_wav_has_the_right_rate_and_length(tmp_path):
    frontend = MelFrontend(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32, griffin_lim_iters=8)
    wave = torch.from_numpy(sine(500.0, 0.5, 8000))
    mel = frontend.log_mel(wave)
    assert mel.shape == (32, frontend.frames(4000))
    audio = frontend.to_audio(mel)
    path = write_audio(tmp_path / "out.wav", audio, 8000)
    info = sf.info(str(path))
    assert info.samplerate == 8000 and info.channels == 1
    assert info.frames == frontend.samples(mel.shape[-1])
    assert abs(peak_frequency(audio, 8000) - 500.0) < 60.0  # within a mel band (~70 Hz wide here) of the tone


@pytest.mark.parametrize("extra", [0, 1, 63, 64])
def test_mel_to_wav_gives_any_sample_count_up_to_a_whole_last_hop(extra):
    # an interpolation asks for a length between its two inputs': up to frames x hop samples, the last hop whole
    frontend = MelFrontend(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32, griffin_lim_iters=4)
    mel = frontend.log_mel(torch.from_numpy(sine(500.0, 0.2, 8000)))
    samples = frontend.samples(mel.shape[-1]) + extra
    assert frontend.to_audio(mel, samples=samples).numel() == samples


def test_mel_statistics_normalise_per_bin():
    mels = [torch.randn(16, 30) * 5 + torch.arange(16.0)[:, None] for _ in range(4)]
    stats = MelStats.from_mels(mels)
    normalised = torch.cat([stats.normalize(m) for m in mels], dim=-1)
    assert torch.allclose(normalised.mean(-1), torch.zeros(16), atol=1e-4)
    assert torch.allclose(normalised.std(-1), torch.ones(16), atol=1e-3)
    assert torch.allclose(stats.denormalize(stats.normalize(mels[0])), mels[0], atol=1e-4)
    again = MelStats.from_info(stats.to_info())
    assert torch.allclose(again.mean, stats.mean, atol=1e-4)
