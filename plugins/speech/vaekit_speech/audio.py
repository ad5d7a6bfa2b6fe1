"""Audio in and out: read WAV/FLAC/OGG with soundfile, mono, resample, trim silence, normalise loudness.

    wave = load_audio("0_jackson_0.wav", sample_rate=8000, trim_db=40.0, normalize="rms")
    write_audio("out.wav", wave, 8000)

torchaudio is used only for resampling (torchaudio.load/save need FFmpeg, which we do not assume).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from vaekit.plugin_api import atomic_open

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SILENCE_DBFS = -60.0  # a file whose loudest sample is below this holds no speech: normalising it boosts noise


class AudioFileError(ValueError):
    """An audio file that cannot be used (truncated, not audio, empty); the message names the file."""


def check_wav_complete(path: Path) -> None:
    """Raise AudioFileError if a RIFF/WAVE file's data chunk is shorter than its header says.

    libsndfile silently returns fewer frames for a truncated WAV, so a cut-off download would
    otherwise train on a clipped utterance without anyone noticing.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # not RIFF/WAVE: soundfile decides
        size = path.stat().st_size
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI" if head[:4] == b"RIFF" else ">4sI", f.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size != 0xFFFFFFFF and available < chunk_size:
                    raise AudioFileError(f"{path}: truncated WAV: the data chunk declares {chunk_size} bytes "
                                         f"but only {available} are present")
                return
            offset += 8 + chunk_size + (chunk_size & 1)
        raise AudioFileError(f"{path}: truncated WAV: no complete 'data' chunk")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples [frames, channels] float32 in [-1, 1], sample rate in Hz); AudioFileError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such audio file")
    check_wav_complete(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file (expected WAV, FLAC or OGG): {exc}") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: audio file has no samples")
    if not np.isfinite(data).all():
        raise AudioFileError(f"{path}: audio contains NaN or infinite samples")
    return data, rate


def to_mono(samples: np.ndarray) -> Tensor:
    """Average channels: [frames, channels] -> [frames]."""
    return torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1)))


def resample(wave: Tensor, rate: int, target_rate: int) -> Tensor:
    """Band-limited resampling with torchaudio (sinc interpolation)."""
    if rate == target_rate:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, rate, target_rate)


def trim_silence(wave: Tensor, sample_rate: int, top_db: float = 40.0, frame_ms: float = 20.0) -> Tensor:
    """Drop leading and trailing frames quieter than top_db below the loudest frame (librosa-style trim)."""
    frame = max(1, int(sample_rate * frame_ms / 1000))
    hop = max(1, frame // 2)
    if wave.numel() <= frame:
        return wave
    frames = wave.unfold(0, frame, hop)
    rms_db = 10 * torch.log10(frames.pow(2).mean(-1).clamp(min=1e-10))
    loud = torch.nonzero(rms_db > rms_db.max() - top_db).flatten()
    if loud.numel() == 0:
        return wave
    start = int(loud[0]) * hop
    end = min(wave.numel(), int(loud[-1]) * hop + frame)
    return wave[start:end]


def loudness_gain(wave: Tensor, kind: str = "rms", target_db: float = -20.0) -> float:
    """The factor that brings a wave to a target RMS or peak level in dBFS (1 for 'none' or silence), lowered
    so that the peak stays at 0.99 at most."""
    if kind == "none":
        return 1.0
    level = float(wave.pow(2).mean().sqrt() if kind == "rms" else wave.abs().max())
    if level <= 1e-8:
        return 1.0
    gain = 10 ** (target_db / 20) / level
    peak = float(wave.abs().max()) * gain
    return gain * 0.99 / peak if peak > 0.99 else gain


def normalize_loudness(wave: Tensor, kind: str = "rms", target_db: float = -20.0) -> Tensor:
    """Scale to a target RMS or peak level in dBFS ('none' leaves the wave alone); never clips above 0 dBFS."""
    return wave * loudness_gain(wave, kind, target_db) if kind != "none" else wave


def load_audio(path: str | Path, sample_rate: int, trim_db: float | None = None, normalize: str = "none",
               target_db: float = -20.0) -> Tensor:
    """A file as a mono float waveform [samples] at sample_rate, optionally trimmed and level-normalised."""
    return load_audio_gain(path, sample_rate, trim_db, normalize, target_db)[0]


def load_audio_gain(path: str | Path, sample_rate: int, trim_db: float | None = None, normalize: str = "none",
                    target_db: float = -20.0) -> tuple[Tensor, float]:
    """(load_audio's waveform, the factor its level normalisation multiplied the file's samples by)."""
    samples, rate = read_audio(path)
    wave = resample(to_mono(samples), rate, sample_rate)
    peak = float(wave.abs().max())
    if peak < 10 ** (SILENCE_DBFS / 20):
        level = "all zeros" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise AudioFileError(f"{path}: silent ({level}, below {SILENCE_DBFS:.0f} dBFS); there is nothing to "
                             "normalise or learn from")
    if trim_db is not None:
        wave = trim_silence(wave, sample_rate, trim_db)
    gain = loudness_gain(wave, normalize, target_db)
    return (wave * gain).float(), gain


def write_audio(path: str | Path, wave: Tensor, sample_rate: int) -> Path:
    """Write a mono waveform as 16-bit PCM WAV (peak-limited to avoid wrap-around clipping)."""
    path = Path(path)
    samples = wave.detach().float().cpu().flatten().numpy()
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 0.99:
        samples = samples / peak * 0.99
    with atomic_open(path, "wb") as f:  # never through a link planted in the run folder
        sf.write(f, samples, sample_rate, subtype="PCM_16", format="WAV")
    return path
