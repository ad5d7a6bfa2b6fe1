"""The recipe's data section (SpeechDataConfig), the Utterance record, and the mel frontend a data config describes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .features import MelFrontend

FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
NATIVE_RATES = {"fsdd": 8000, "fsdd_strings": 8000}  # FSDD is recorded at 8 kHz; other sources default to 16 kHz


@dataclass
class SpeechDataConfig:
    """The recipe's data section: where utterances come from and how they become log-mels."""

    source: Literal["tones", "fsdd", "fsdd_strings", "folder"] = "tones"
    root: str | None = field(default=None, metadata={"must_exist": True})  # fsdd recordings / audio folder
    metadata: str | None = field(default=None, metadata={"must_exist": True})  # folder: CSV file,label,speaker
    sample_rate: int | None = None  # Hz (null: 8000 for FSDD, its native rate; 16000 otherwise); files are resampled
    n_fft: int | None = None  # null: a 64 ms window at the sample rate (512 at 8 kHz, 1024 at 16 kHz)
    hop_length: int | None = None  # null: n_fft / 4 (16 ms frames; 75% overlap suits Griffin-Lim)
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    top_db: float = 80.0
    max_seconds: float | None = None  # null: whole utterances; a number cuts longer ones (after trimming)
    trim_db: float | None = 40.0  # trim leading/trailing audio this far below the peak; null = no trimming
    normalize: Literal["none", "rms", "peak"] = "rms"
    target_db: float = -20.0  # dBFS for rms/peak normalisation
    condition_on: list[str] = field(default_factory=list)  # "label" and/or "speaker" (CVAE)
    skip_bad_files: bool = False  # skip and list unreadable files instead of stopping
    speakers: list[str] | None = None  # fsdd/folder: keep only these speakers
    max_index: int | None = None  # fsdd: keep recordings with index < max_index (small subsets)
    val_fraction: float = 0.1  # fsdd: share of the non-test recordings for validation; folder/tones too
    test_fraction: float = 0.1  # folder/tones (fsdd uses its standard split: index 0-4 is test)
    n_tones: int = 1200  # tones: total utterances
    n_pitches: int = 8  # tones: pitch classes, whole tones up from 220 Hz
    n_strings: int = 300  # fsdd_strings: test strings (validation a fifth as many, training four times as many)
    griffin_lim_iters: int = 64

    def __post_init__(self):
        for name in self.condition_on:
            if name not in ("label", "speaker"):
                raise ValueError(f"condition_on: expected 'label' and/or 'speaker', got {name!r}")
        if self.source in ("fsdd", "fsdd_strings", "folder") and not self.root:
            raise ValueError(f"root: the {self.source} source needs root (a folder of audio files)")
        if self.source == "fsdd_strings" and "label" in self.condition_on:
            raise ValueError("condition_on: a digit string has many digits; fsdd_strings conditions on speaker only")
        if self.n_mels < 8 or self.n_mels % 8:
            raise ValueError(f"n_mels: expected a multiple of 8 (the classifiers' three stride-2 layers), "
                             f"got {self.n_mels}")
        # STFT settings follow the rate unless given; the resolved values land in the run's recipe.yaml.
        if self.sample_rate is None:
            self.sample_rate = NATIVE_RATES.get(self.source, 16000)
        if self.n_fft is None:
            self.n_fft = 2 ** round(math.log2(0.064 * self.sample_rate))
        if self.hop_length is None:
            self.hop_length = self.n_fft // 4


@dataclass
class Utterance:
    """One recording's metadata; label/speaker are class names (None when unknown)."""

    name: str
    path: Path | None = None
    label: str | None = None
    speaker: str | None = None
    index: int = 0  # fsdd: the recording index; tones: the generator seed


def frontend_from(cfg: SpeechDataConfig | dict) -> MelFrontend:
    """The mel transform a data config (or the info dict's copy of it) describes."""
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
    return MelFrontend(sample_rate=get("sample_rate"), n_fft=get("n_fft"), hop_length=get("hop_length"),
                       n_mels=get("n_mels"), f_min=get("f_min"), f_max=get("f_max"), top_db=get("top_db"),
                       griffin_lim_iters=get("griffin_lim_iters"))


def max_frames(cfg: SpeechDataConfig | dict) -> int | None:
    """Frames kept per utterance: max_seconds of audio, or None (whole utterances)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
    if get("max_seconds") is None:
        return None
    return 1 + int(get("max_seconds") * get("sample_rate")) // get("hop_length")
