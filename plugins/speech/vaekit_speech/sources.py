"""The utterances of each data source: FSDD recordings, a folder of audio files (optional CSV), procedural tones."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
from torch import Tensor

from .audio import AUDIO_SUFFIXES, AudioFileError
from .data_config import FSDD_NAME, SpeechDataConfig, Utterance

TIMBRES = ("bright", "dark", "hollow")  # harmonic profiles of the tones set: 1/k, 1/k^2, odd 1/k


def list_fsdd(cfg: SpeechDataConfig) -> list[Utterance]:
    """FSDD recordings {digit}_{speaker}_{index}.wav; other files are an error naming them."""
    root = Path(cfg.root)
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise AudioFileError(f"{root}: no audio files (expected FSDD recordings like 0_jackson_0.wav)")
    found = []
    for path in files:
        match = FSDD_NAME.match(path.stem)
        if not match:
            raise AudioFileError(f"{path}: name does not follow the FSDD pattern {{digit}}_{{speaker}}_{{index}}")
        digit, speaker, index = match.group(1), match.group(2), int(match.group(3))
        if cfg.speakers is not None and speaker not in cfg.speakers:
            continue
        if cfg.max_index is not None and index >= cfg.max_index:
            continue
        found.append(Utterance(path.stem, path, digit, speaker, index))
    return found


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """CSV with a `file` column and optional `label` / `speaker` columns -> {file: row}."""
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte-order mark, which would glue itself to 'file'.
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "file" not in reader.fieldnames:
                raise ValueError(f"{path}: metadata CSV needs a header with a 'file' column (file,label,speaker)")
            unknown = set(reader.fieldnames) - {"file", "label", "speaker"}
            if unknown:
                raise ValueError(f"{path}: unknown metadata column(s) {sorted(unknown)}; expected file,label,speaker")
            return {row["file"]: row for row in reader}
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); save the metadata CSV as UTF-8") from None


def list_folder(cfg: SpeechDataConfig) -> list[Utterance]:
    """Audio files under root (recursively), labelled by the metadata CSV when one is given."""
    root = Path(cfg.root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise AudioFileError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    rows = read_metadata(Path(cfg.metadata)) if cfg.metadata else None
    found = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        row = None
        if rows is not None:
            row = rows.get(rel) or rows.get(path.name)
            if row is None:
                continue  # files the CSV does not list are not part of the data set
        label = (row or {}).get("label") or None
        speaker = (row or {}).get("speaker") or None
        if cfg.speakers is not None and speaker not in cfg.speakers:
            continue
        found.append(Utterance(rel, path, label, speaker))
    if rows is not None and not found:
        raise ValueError(f"{cfg.metadata}: none of its files were found under {root}")
    return found


def list_tones(cfg: SpeechDataConfig) -> list[Utterance]:
    """Procedural tones: pitch class i % n_pitches, timbre (i // n_pitches) % 3."""
    found = []
    for i in range(cfg.n_tones):
        pitch = i % cfg.n_pitches
        timbre = TIMBRES[(i // cfg.n_pitches) % len(TIMBRES)]
        found.append(Utterance(f"tone_{i:05d}", None, f"{tone_frequency(pitch):.0f}Hz", timbre, i))
    return found


def tone_frequency(pitch_class: int) -> float:
    """Fundamental in Hz of a pitch class: whole tones up from 220 Hz."""
    return 220.0 * 2 ** (2 * pitch_class / 12)


def synthesize_tone(frequency: float, timbre: str, seconds: float, sample_rate: int,
                    generator: torch.Generator) -> Tensor:
    """A harmonic tone with an attack/release envelope and a little noise: [samples]."""
    n = int(seconds * sample_rate)
    t = torch.arange(n) / sample_rate
    wave = torch.zeros(n)
    for k in range(1, int(sample_rate / 2 / frequency)):
        if timbre == "hollow" and k % 2 == 0:
            continue
        amplitude = 1.0 / k**2 if timbre == "dark" else 1.0 / k
        phase = 2 * math.pi * torch.rand((), generator=generator)
        wave += amplitude * torch.sin(2 * math.pi * frequency * k * t + phase)
    attack, release = int(0.02 * sample_rate), int(0.08 * sample_rate)
    envelope = torch.ones(n)
    envelope[:attack] = torch.linspace(0, 1, attack)
    envelope[n - release:] = torch.linspace(1, 0, release)
    wave = wave * envelope + 0.003 * torch.randn(n, generator=generator)
    return wave / wave.abs().max() * 0.5


def tone_seconds(index: int, seed: int) -> float:
    """Known duration of tone `index` (0.25-0.85 s), reproducible from the seed."""
    generator = torch.Generator().manual_seed(seed * 100_003 + index)
    return 0.25 + 0.6 * float(torch.rand((), generator=generator))
