"""Log-mel features (dB) with torchaudio, their per-bin normalisation, and the way back to audio.

    frontend = MelFrontend(sample_rate=8000, n_fft=512, hop_length=128, n_mels=64)
    mel_db = frontend.log_mel(wave)                  # [n_mels, frames] dB
    wave = frontend.to_audio(mel_db)                 # InverseMelScale + GriffinLim
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from vaekit.plugin_api import atomic_open

DB_FLOOR = 1e-10  # power floor: -100 dB


def hop_seconds(info: dict) -> float:
    """Seconds between mel frames of a model built from data info (its "data": sample_rate, hop_length)."""
    return info["data"]["hop_length"] / info["data"]["sample_rate"]


@dataclass
class MelFrontend:
    """The audio <-> log-mel transform; every field comes from the recipe's data section."""

    sample_rate: int = 8000
    n_fft: int = 512
    hop_length: int = 128
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    top_db: float = 80.0  # dynamic range kept below each utterance's loudest bin
    griffin_lim_iters: int = 64

    def __post_init__(self):
        self._mel = self._inverse = None

    def frames(self, n_samples: int) -> int:
        """Mel frames for a waveform of n_samples (centred STFT)."""
        return 1 + n_samples // self.hop_length

    def samples(self, n_frames: int) -> int:
        """Waveform length that gives n_frames."""
        return (n_frames - 1) * self.hop_length

    def min_samples(self) -> int:
        """Shortest waveform the centred STFT takes (its reflect padding needs more than n_fft // 2 samples)."""
        return self.n_fft // 2 + 1

    def min_frames(self) -> int:
        """Fewest frames Griffin-Lim can invert: its inner STFT needs more than n_fft // 2 samples too."""
        return self.n_fft // (2 * self.hop_length) + 2

    def log_mel(self, wave: Tensor) -> Tensor:
        """Waveform [samples] -> log-mel power [n_mels, frames] in dB, floored top_db below its maximum.

        A wave shorter than half an FFT window (a 5 ms click) is padded with silence rather than refused.
        """
        if wave.shape[-1] < self.min_samples():
            wave = torch.nn.functional.pad(wave, (0, self.min_samples() - wave.shape[-1]))
        if self._mel is None:
            import torchaudio

            self._mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, f_min=self.f_min,
                f_max=self.f_max, n_mels=self.n_mels, power=2.0)
        mel = self._mel.to(wave.device)(wave.float())
        db = 10.0 * torch.log10(mel.clamp(min=DB_FLOOR))
        return torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)

    @torch.no_grad()
    def to_audio(self, mel_db: Tensor, n_iter: int | None = None, samples: int | None = None) -> Tensor:
        """Log-mel [n_mels, frames] (dB) -> waveform [samples] via InverseMelScale and Griffin-Lim.

        samples: the length in samples to give back (the input's, up to a hop past the last frame's start);
        default (frames - 1) * hop_length.
        """
        import torchaudio

        if self._inverse is None:
            self._inverse = torchaudio.transforms.InverseMelScale(
                n_stft=self.n_fft // 2 + 1, n_mels=self.n_mels, sample_rate=self.sample_rate, f_min=self.f_min,
                f_max=self.f_max)
        mel_db = mel_db.detach().float()  # on its own device: a GPU runs the iterations much faster
        frames = mel_db.shape[-1]
        length = max(self.samples(frames), self.hop_length)  # one frame still stands for one hop of sound
        if samples is not None:  # the centred last frame's window covers the samples up to the next hop
            length = max(1, min(int(samples), frames * self.hop_length))
        # Griffin-Lim's inner STFT of its L samples must give the spectrogram's L // hop + 1 frames back: a whole
        # last hop (L = frames x hop) needs one frame more
        needed = max(self.min_frames(), length // self.hop_length + 1)
        if frames < needed:  # an early checkpoint's 1-3 frame utterance, or a whole last hop: pad with its floor
            floor = mel_db.amin(dim=(-2, -1), keepdim=True).expand(*mel_db.shape[:-1], needed - frames)
            mel_db = torch.cat([mel_db, floor], dim=-1)
        spec = self._inverse.to(mel_db.device)(torch.pow(10.0, mel_db / 10.0)).clamp(min=0.0)
        # Griffin-Lim starts from random phases: a fixed private seed keeps WAVs reproducible and leaves
        # the global RNG (which the trainer checkpoints) untouched. Fast Griffin-Lim's momentum (0.99,
        # Perraudin et al. 2013) and 64 iterations keep a real recording's words recognisable.
        devices = [mel_db.device] if mel_db.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            wave = torchaudio.functional.griffinlim(
                spec, torch.hann_window(self.n_fft, device=mel_db.device), self.n_fft, self.hop_length, self.n_fft,
                power=2.0, n_iter=n_iter or self.griffin_lim_iters, momentum=0.99,
                length=max(self.samples(mel_db.shape[-1]), length), rand_init=True)[..., :length]
        return wave.cpu()


def silent_frames(mel_db: Tensor, below_db: float) -> Tensor:
    """Frames [frames] (bool) of a log-mel [n_mels, frames] (dB) whose power, summed over the mel bins, is more
    than below_db under the loudest frame's: the frames training's silence trimming (data.trim_db) drops."""
    level = 10.0 * torch.log10(torch.pow(10.0, mel_db / 10.0).sum(-2).clamp(min=DB_FLOOR))
    return level < level.amax(-1, keepdim=True) - below_db


@dataclass
class MelStats:
    """Per-mel-bin mean and standard deviation (dB) over the training split's frames."""

    mean: Tensor  # [n_mels]
    std: Tensor  # [n_mels]

    @classmethod
    def from_mels(cls, mels: list[Tensor]) -> MelStats:
        """Statistics over every frame of every training utterance (padding excluded by construction)."""
        frames = torch.cat([m for m in mels], dim=-1)  # [n_mels, total frames]
        return cls(frames.mean(-1), frames.std(-1).clamp(min=1e-3))

    @classmethod
    def from_info(cls, info: dict) -> MelStats:
        return cls(torch.tensor(info["mel_mean"]), torch.tensor(info["mel_std"]))

    def to_info(self) -> dict:
        return {"mel_mean": [round(v, 5) for v in self.mean.tolist()],
                "mel_std": [round(v, 5) for v in self.std.tolist()]}

    def normalize(self, mel_db: Tensor) -> Tensor:
        """dB -> zero-mean unit-variance per bin ([..., n_mels, frames])."""
        return (mel_db - self.mean.to(mel_db)[:, None]) / self.std.to(mel_db)[:, None]

    def denormalize(self, mel: Tensor) -> Tensor:
        """Normalised log-mel -> dB."""
        return mel * self.std.to(mel)[:, None] + self.mean.to(mel)[:, None]


def save_mel_png(path: str | Path, mels_db: list[Tensor], titles: list[str] | None = None,
                 hop_seconds: float | None = None) -> Path:
    """Plot one or more log-mel spectrograms (dB) side by side as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(mels_db)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        mel = mels_db[i].detach().float().cpu().numpy()
        extent = None
        if hop_seconds:
            extent = (0, mel.shape[1] * hop_seconds, 0, mel.shape[0])
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent)
        ax.set_title(titles[i] if titles else f"{i}", fontsize=8)
        ax.set_xlabel("seconds" if hop_seconds else "frame", fontsize=7)
        ax.set_ylabel("mel bin", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:  # never through a link planted in the run folder
        fig.savefig(f, dpi=80, format="png")
    plt.close(fig)
    return path
