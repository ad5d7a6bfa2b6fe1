"""Digit strings: FSDD utterances of one speaker joined with short pauses, with every word's boundaries known.

    data: {source: fsdd_strings, root: ${VAEKIT_DATA}/fsdd/recordings, condition_on: [speaker]}

For each string (seeded): a speaker (in turn), 3-8 of that speaker's recordings from one split, 0.15-0.35 s
pauses between them and 0.1 s of silence at either end, stretched or shortened to last 2-8 s. Training
strings come from the training recordings only (index >= 5, less the validation indices), test strings
from the test recordings (index 0-4), so a test string never contains a word the model heard.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaekit.plugin_api import SPLITS, SubsetConfig, pick

from .conversion import speaker_moments
from .data import data_info, load_mels, median_frames, single_thread, split_utterances, utterance_wave
from .data_config import SpeechDataConfig, Utterance, frontend_from
from .features import MelStats
from .sources import list_fsdd

MIN_WORDS, MAX_WORDS = 3, 8
MIN_SECONDS, MAX_SECONDS = 2.0, 8.0
EDGE_SECONDS = 0.1
_WAVE_CACHE: dict[tuple, Tensor] = {}


@dataclass
class DigitString:
    """One string: its words (utterances of one speaker), waveform and word boundaries in samples."""

    name: str
    speaker: str
    words: list[Utterance]
    wave: Tensor
    bounds: list[tuple[int, int]]  # [start, end) sample of each word


def single_utterance_config(cfg: SpeechDataConfig) -> SpeechDataConfig:
    """The same feature settings over FSDD's single recordings (the classifiers train on those)."""
    return dataclasses.replace(cfg, source="fsdd", condition_on=[c for c in cfg.condition_on if c != "label"])


def word_wave(utt: Utterance, cfg: SpeechDataConfig) -> Tensor:
    """A recording as the strings use it: trimmed and level-normalised like any FSDD utterance; cached."""
    key = (str(utt.path), cfg.sample_rate, cfg.trim_db, cfg.normalize, cfg.target_db)
    if key not in _WAVE_CACHE:
        _WAVE_CACHE[key] = utterance_wave(utt, cfg)
    return _WAVE_CACHE[key]


def make_strings(words: list[Utterance], cfg: SpeechDataConfig, n: int, seed: int, prefix: str) -> list[DigitString]:
    """n seeded strings from `words` (one split's recordings), speakers taken in turn."""
    generator = torch.Generator().manual_seed(seed)
    rate = cfg.sample_rate
    by_speaker: dict[str, list[Utterance]] = {}
    for utt in words:
        by_speaker.setdefault(utt.speaker, []).append(utt)
    speakers = sorted(s for s, utts in by_speaker.items() if len(utts) >= MIN_WORDS)
    if not speakers:
        raise ValueError(f"{cfg.root}: fsdd_strings needs at least {MIN_WORDS} recordings of a speaker per split")
    strings = []
    for i in range(n):
        speaker = speakers[i % len(speakers)]
        pool = by_speaker[speaker]
        count = int(torch.randint(MIN_WORDS, min(MAX_WORDS, len(pool)) + 1, (), generator=generator))
        picks = [pool[j] for j in torch.randperm(len(pool), generator=generator)[:count].tolist()]
        waves = [word_wave(u, cfg) for u in picks]
        while len(waves) > MIN_WORDS and _speech(waves) + 0.15 * rate * (len(waves) - 1) > (MAX_SECONDS - 0.3) * rate:
            picks, waves = picks[:-1], waves[:-1]
        pauses = (0.15 + 0.2 * torch.rand(len(waves) - 1, generator=generator)) * rate
        total = _speech(waves) + pauses.sum() + 2 * EDGE_SECONDS * rate
        if total < MIN_SECONDS * rate:  # short words: longer pauses bring the string to 2 s
            pauses = pauses + (MIN_SECONDS * rate - total) / len(pauses)
        elif total > MAX_SECONDS * rate:
            pauses = pauses * max(0.0, 1 - (total - MAX_SECONDS * rate + len(pauses)) / pauses.sum())
        edge = int(EDGE_SECONDS * rate)
        parts, bounds, position = [torch.zeros(edge)], [], edge
        for k, wave in enumerate(waves):
            bounds.append((position, position + wave.numel()))
            parts.append(wave)
            position += wave.numel()
            gap = int(pauses[k].ceil()) if k < len(pauses) else edge
            parts.append(torch.zeros(gap))
            position += gap
        strings.append(DigitString(f"{prefix}_{i:04d}_{speaker}", speaker, picks, torch.cat(parts), bounds))
    return strings


def _speech(waves: list[Tensor]) -> int:
    return sum(w.numel() for w in waves)


def segments_of(string: DigitString, hop: int, frames: int, labels: dict, speakers: dict) -> Tensor:
    """[n_words, 4]: first frame, end frame (exclusive), digit index, speaker index of each word."""
    rows = []
    for (start, end), utt in zip(string.bounds, string.words, strict=True):
        first, last = start // hop, min(frames, -(-end // hop) + 1)
        rows.append([first, last, labels.get(utt.label, -1), speakers.get(utt.speaker, -1)])
    return torch.tensor(rows, dtype=torch.long)


class StringDataset(Dataset):
    """Normalised log-mels of digit strings with their speaker (condition) and word segments."""

    def __init__(self, strings: list[DigitString], mels: list[Tensor], stats: MelStats, info: dict, hop: int):
        self.strings = strings
        self.mels = [stats.normalize(m) for m in mels]
        labels = {name: i for i, name in enumerate(info["labels"])}
        self.speaker_index = {name: i for i, name in enumerate(info["speakers"])}
        self.segments = [segments_of(s, hop, m.shape[-1], labels, self.speaker_index)
                         for s, m in zip(strings, mels, strict=True)]
        self.condition_on = info["condition_on"]

    def __len__(self) -> int:
        return len(self.mels)

    def targets(self, i: int) -> tuple[int, int]:
        return -1, self.speaker_index.get(self.strings[i].speaker, -1)

    def __getitem__(self, i: int) -> dict:
        _, speaker = self.targets(i)
        item = {"x": {"mel": self.mels[i]}, "label": torch.tensor(-1), "speaker": torch.tensor(speaker),
                "segments": self.segments[i]}
        if self.condition_on:
            item["c"] = torch.tensor([speaker])
        return item


def build_string_splits(cfg: SpeechDataConfig, seed: int, subset: SubsetConfig | None = None):
    """train, val, test StringDatasets (each cut to the subset) and the info dict; word recordings come from FSDD's
    own split."""
    single = single_utterance_config(cfg)
    words, _, skipped = load_mels(single, list_fsdd(single), seed)  # reads every file once, bad ones named
    info = data_info(cfg, words)
    info["skipped_files"], info["seed"] = skipped, seed
    frontend = frontend_from(cfg)
    splits = split_utterances(single, words, seed)
    counts = (4 * cfg.n_strings, max(1, cfg.n_strings // 5), cfg.n_strings)
    built = []
    with single_thread(), torch.inference_mode():
        for offset, (split, count, prefix) in enumerate(zip(splits, counts, SPLITS, strict=True)):
            if not split:
                built.append(None)
                continue
            strings = pick(make_strings(split, cfg, count, seed * 1000 + offset, prefix), subset, seed, prefix)
            built.append((strings, [frontend.log_mel(s.wave) for s in strings]))
    if built[0] is None:
        raise ValueError(f"{cfg.root}: the training split is empty")
    stats = MelStats.from_mels(built[0][1])
    info.update(stats.to_info())
    info["median_frames"] = median_frames(built[0][1])
    info["strings"] = {name: len(b[0]) if b else 0 for name, b in zip(SPLITS, built, strict=True)}
    datasets = [StringDataset(b[0], b[1], stats, info, cfg.hop_length) if b else None for b in built]
    if "speaker" in cfg.condition_on:
        info.update(speaker_moments(datasets[0], len(info["speakers"])))
    return datasets[0], datasets[1], datasets[2], info
