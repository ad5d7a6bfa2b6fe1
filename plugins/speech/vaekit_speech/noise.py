"""Noise for enhancement: white, pink, babble or a folder of noise recordings, mixed with speech at an SNR in dB.

    noise = make_noise("babble", len(clean), 8000, seed=3, babble_sources=other_speakers_files)
    noisy = mix_at_snr(clean, noise, snr_db=5.0)     # 10 log10(sum clean^2 / sum noise'^2) == 5 dB exactly

The recipes' on-the-fly training mixtures and benchmarks/speech_enhancement.py draw from the same functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .audio import AUDIO_SUFFIXES, load_audio

NOISE_KINDS = ("white", "pink", "babble")
BABBLE_TALKERS = 6  # voices summed; fewer sounds like single interfering talkers rather than babble


def mix_at_snr(clean: Tensor, noise: Tensor, snr_db: float) -> Tensor:
    """clean + noise scaled so that the clean-to-noise energy ratio is exactly snr_db (dB); noise as long as clean."""
    if noise.numel() != clean.numel():
        raise ValueError(f"noise: expected {clean.numel()} samples as the speech has, got {noise.numel()}")
    clean_energy = float(clean.double().pow(2).sum())
    noise_energy = float(noise.double().pow(2).sum())
    if noise_energy <= 0 or clean_energy <= 0:
        raise ValueError("mix_at_snr: the speech and the noise must both have energy (a silent one has no SNR)")
    scale = (clean_energy / (noise_energy * 10 ** (snr_db / 10))) ** 0.5
    return (clean.double() + scale * noise.double()).to(clean.dtype)


def snr_db(clean: Tensor, noisy: Tensor) -> float:
    """The SNR (dB) of noisy = clean + noise: 10 log10(sum clean^2 / sum (noisy - clean)^2)."""
    clean, noisy = clean.double(), noisy.double()
    return float(10 * torch.log10(clean.pow(2).sum() / (noisy - clean).pow(2).sum()))


def white_noise(samples: int, rng: np.random.Generator) -> Tensor:
    """Gaussian white noise, unit variance."""
    return torch.from_numpy(rng.standard_normal(samples)).float()


def pink_noise(samples: int, rng: np.random.Generator) -> Tensor:
    """1/f (pink) noise: white noise whose spectrum's power is divided by the frequency; unit variance."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequency = np.arange(spectrum.size, dtype=np.float64)
    frequency[0] = 1.0  # keep the DC bin finite; the mean is removed below
    wave = np.fft.irfft(spectrum / np.sqrt(frequency), n=samples)
    wave -= wave.mean()
    return torch.from_numpy(wave / max(wave.std(), 1e-12)).float()


def looped(wave: Tensor, samples: int, rng: np.random.Generator) -> Tensor:
    """`samples` samples of wave from a random offset, repeating it when it is shorter."""
    repeats = -(-(samples + wave.numel()) // wave.numel())
    start = int(rng.integers(wave.numel()))
    return wave.repeat(repeats)[start:start + samples]


def babble_noise(samples: int, sample_rate: int, sources: list[Path], rng: np.random.Generator,
                 talkers: int = BABBLE_TALKERS) -> Tensor:
    """Several talkers at once: `talkers` streams, each recordings of `sources` one after another at equal level
    from a random offset, summed; unit variance. Give sources of speakers other than the speech's."""
    if not sources:
        raise ValueError("babble noise: needs speech recordings of other speakers (babble_sources is empty)")
    total = torch.zeros(samples)
    for _ in range(talkers):
        stream, length = [], 0
        while length < samples:
            wave = load_audio(sources[int(rng.integers(len(sources)))], sample_rate, trim_db=40.0, normalize="rms")
            stream.append(wave)
            length += wave.numel()
        total += looped(torch.cat(stream), samples, rng)
    return total / total.std().clamp(min=1e-12)


def noise_files(folder: str | Path) -> list[Path]:
    """The audio files (WAV, FLAC, OGG) of a noise folder; a one-line error when it has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"noise {str(folder)!r}: expected white, pink, babble or a folder of noise WAVs")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ValueError(f"noise folder {folder}: no audio files (expected .wav, .flac or .ogg)")
    return files


def make_noise(kind: str, samples: int, sample_rate: int, seed: int,
               babble_sources: list[Path] | None = None) -> Tensor:
    """`samples` samples of noise, unit variance, the same for the same seed: kind is white, pink, babble (from
    babble_sources) or a folder of noise recordings (one picked, from a random offset, looped when short)."""
    rng = np.random.default_rng(seed)
    if kind == "white":
        return white_noise(samples, rng)
    if kind == "pink":
        return pink_noise(samples, rng)
    if kind == "babble":
        return babble_noise(samples, sample_rate, list(babble_sources or []), rng)
    files = noise_files(kind)
    wave = load_audio(files[int(rng.integers(len(files)))], sample_rate)
    wave = looped(wave, samples, rng)
    return wave / wave.std().clamp(min=1e-12)


def noisy_version(clean: Tensor, sample_rate: int, kind: str, snr: float, seed: int,
                  babble_sources: list[Path] | None = None) -> Tensor:
    """clean mixed with `kind` noise at `snr` dB (seeded): what the benchmark and the training mixtures use."""
    return mix_at_snr(clean, make_noise(kind, clean.numel(), sample_rate, seed, babble_sources), snr)
