"""Speech data sets: each utterance's log-mel (cached), the padded batches, the splits and the info dict.

The sources (FSDD, a folder of audio files, procedural tones) list their utterances in vaekit_speech.sources;
digit strings made of FSDD are built in vaekit_speech.strings.

Every utterance becomes a normalised log-mel [n_mels, frames] of its whole length; batches pad to the
longest utterance and carry a mask so padding never enters the likelihood:

    batch = {"x": {"mel": [B, n_mels, T], "mask": [B, T]}, "c": [B, n_conditions], "label": [B], "speaker": [B]}

Digit strings (fsdd_strings) also carry "segments": per string a [n, 4] tensor of (first frame, end frame,
digit, speaker) class indices, so classifiers can score each word of a reconstruction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaekit.plugin_api import SPLITS, SubsetConfig, name_files, pick

from .audio import AudioFileError, load_audio_gain, loudness_gain
from .conversion import speaker_moments
from .data_config import SpeechDataConfig, Utterance, frontend_from, max_frames
from .features import MelStats
from .sources import list_folder, list_fsdd, list_tones, synthesize_tone, tone_seconds

LABEL_NAMES = {"fsdd": "digit", "fsdd_strings": "digit", "tones": "pitch", "folder": "label"}
SPEAKER_NAMES = {"fsdd": "speaker", "fsdd_strings": "speaker", "tones": "timbre", "folder": "speaker"}


# -- features -------------------------------------------------------------------------------------

_FEATURE_CACHE: dict[tuple, Tensor] = {}  # (file, feature settings) -> dB log-mel; tests rebuild data often
_FULL_FRAMES: dict[tuple, int] = {}  # the same key -> frames before the cut to max_seconds
_SAMPLES: dict[tuple, int] = {}  # the same key -> samples of the processed waveform (after the cut)
_GAINS: dict[tuple, float] = {}  # the same key -> the factor level normalisation multiplied the samples by


def audio_settings(cfg: SpeechDataConfig | dict) -> tuple:
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
    return tuple(get(k) for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max", "top_db",
                                  "trim_db", "normalize", "target_db", "max_seconds"))


def utterance_wave(utt: Utterance, cfg: SpeechDataConfig | dict, seed: int = 0) -> Tensor:
    """The processed waveform of an utterance (file or procedural tone) at the recipe's rate."""
    return utterance_wave_gain(utt, cfg, seed)[0]


def utterance_wave_gain(utt: Utterance, cfg: SpeechDataConfig | dict, seed: int = 0) -> tuple[Tensor, float]:
    """(utterance_wave, the factor its level normalisation multiplied the recording by)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
    if utt.path is None:
        generator = torch.Generator().manual_seed(seed * 100_003 + utt.index + 7)
        pitch = float(utt.label.removesuffix("Hz"))
        wave = synthesize_tone(pitch, utt.speaker, tone_seconds(utt.index, seed), get("sample_rate"), generator)
        gain = loudness_gain(wave, get("normalize"), get("target_db"))
        return wave * gain, gain
    return load_audio_gain(utt.path, get("sample_rate"), get("trim_db"), get("normalize"), get("target_db"))


def utterance_mel(utt: Utterance, cfg: SpeechDataConfig | dict, seed: int = 0) -> Tensor:
    """dB log-mel [n_mels, frames] of an utterance (cut to max_seconds when set); cached per process."""
    key = (str(utt.path) if utt.path else f"{utt.name}:{seed}",) + audio_settings(cfg)
    if key not in _FEATURE_CACHE:
        try:
            wave, gain = utterance_wave_gain(utt, cfg, seed)
            mel = frontend_from(cfg).log_mel(wave)
        except RuntimeError as exc:  # torchaudio's messages name no file
            raise AudioFileError(f"{utt.path or utt.name}: cannot compute its log-mel ({exc})") from None
        _FULL_FRAMES[key] = mel.shape[-1]
        limit = max_frames(cfg)
        cut = limit is not None and mel.shape[-1] > limit
        get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
        _GAINS[key] = gain
        _SAMPLES[key] = min(wave.numel(), int(get("max_seconds") * get("sample_rate"))) if cut else wave.numel()
        _FEATURE_CACHE[key] = mel[:, :max_frames(cfg)].contiguous()  # [:, :None] keeps every frame
    return _FEATURE_CACHE[key]


def utterance_samples(utt: Utterance, cfg: SpeechDataConfig | dict, seed: int = 0) -> int:
    """Samples of the waveform behind utterance_mel's frames (call it after utterance_mel)."""
    key = (str(utt.path) if utt.path else f"{utt.name}:{seed}",) + audio_settings(cfg)
    return _SAMPLES[key]


def utterance_gain(utt: Utterance, cfg: SpeechDataConfig | dict, seed: int = 0) -> float:
    """The factor the level normalisation multiplied the recording by (call it after utterance_mel)."""
    key = (str(utt.path) if utt.path else f"{utt.name}:{seed}",) + audio_settings(cfg)
    return _GAINS[key]


def was_cut(utt: Utterance, cfg: SpeechDataConfig | dict, seed: int = 0) -> bool:
    """Whether utterance_mel cut this utterance to max_seconds (call it after utterance_mel)."""
    limit = max_frames(cfg)
    if limit is None:  # no max_seconds (the default): nothing is ever cut
        return False
    key = (str(utt.path) if utt.path else f"{utt.name}:{seed}",) + audio_settings(cfg)
    return _FULL_FRAMES.get(key, 0) > limit


def note_cut(names: list[str], cfg: SpeechDataConfig | dict) -> None:
    """One line saying which inputs were longer than data.max_seconds and lost their end."""
    if names:
        get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
        print(f"vaekit: note: {len(names)} audio file(s) longer than data.max_seconds={get('max_seconds'):g} s "
              f"were cut to their first {get('max_seconds'):g} s: {name_files(names)}", file=sys.stderr, flush=True)


# -- datasets -------------------------------------------------------------------------------------

class MelDataset(Dataset):
    """Normalised log-mels with their condition columns and label / speaker indices (-1 when unknown)."""

    def __init__(self, utterances: list[Utterance], mels: list[Tensor], stats: MelStats, info: dict):
        self.utterances = utterances
        self.mels = [stats.normalize(m) for m in mels]
        self.label_index = {name: i for i, name in enumerate(info["labels"])}
        self.speaker_index = {name: i for i, name in enumerate(info["speakers"])}
        self.condition_on = info["condition_on"]

    def __len__(self) -> int:
        return len(self.mels)

    def targets(self, i: int) -> tuple[int, int]:
        utt = self.utterances[i]
        return self.label_index.get(utt.label, -1), self.speaker_index.get(utt.speaker, -1)

    def __getitem__(self, i: int) -> dict:
        label, speaker = self.targets(i)
        item = {"x": {"mel": self.mels[i]}, "label": torch.tensor(label), "speaker": torch.tensor(speaker)}
        if self.condition_on:
            item["c"] = torch.tensor([label if name == "label" else speaker for name in self.condition_on])
        return item


def pad_mels(mels: list[Tensor], length: int | None = None) -> dict[str, Tensor]:
    """Stack [n_mels, T_i] into {"mel": [B, n_mels, T], "mask": [B, T]} (zeros and mask 0 beyond each T_i)."""
    length = length or max(m.shape[-1] for m in mels)
    mel = torch.zeros(len(mels), mels[0].shape[0], length)
    mask = torch.zeros(len(mels), length)
    for i, m in enumerate(mels):
        mel[i, :, : m.shape[-1]] = m[:, :length]
        mask[i, : m.shape[-1]] = 1.0
    return {"mel": mel, "mask": mask}


def collate(items: list[dict]) -> dict:
    """Pad a list of dataset items into one batch (see the module docstring)."""
    batch = {"x": pad_mels([item["x"]["mel"] for item in items]),
             "label": torch.stack([item["label"] for item in items]),
             "speaker": torch.stack([item["speaker"] for item in items])}
    if "c" in items[0]:
        batch["c"] = torch.stack([item["c"] for item in items])
    if "segments" in items[0]:  # digit strings: one [n, 4] tensor per string
        batch["segments"] = [item["segments"] for item in items]
    return batch


def split_utterances(cfg: SpeechDataConfig, utterances: list[Utterance], seed: int
                     ) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
    """train / val / test lists: FSDD's standard split (index 0-4 test), else a seeded shuffle."""
    if cfg.source == "fsdd":
        test = [u for u in utterances if u.index < 5]
        rest = [u for u in utterances if u.index >= 5]
        # Validation: the lowest non-test indices of every digit/speaker pair, so val covers them all.
        indices = sorted({u.index for u in rest})
        n_val = max(1, round(cfg.val_fraction * len(indices))) if cfg.val_fraction > 0 and len(indices) > 1 else 0
        val_indices = set(indices[:n_val])
        return ([u for u in rest if u.index not in val_indices], [u for u in rest if u.index in val_indices], test)
    order = torch.randperm(len(utterances), generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [utterances[i] for i in order]
    n_test = round(cfg.test_fraction * len(shuffled))
    n_val = round(cfg.val_fraction * len(shuffled))
    return shuffled[n_test + n_val:], shuffled[n_test:n_test + n_val], shuffled[:n_test]


def load_mels(cfg: SpeechDataConfig, utterances: list[Utterance], seed: int
              ) -> tuple[list[Utterance], list[Tensor], list[str]]:
    """Features of every utterance; bad files raise, or are skipped and returned when skip_bad_files."""
    kept, mels, skipped, cut = [], [], [], []
    with single_thread(), torch.inference_mode():
        for utt in utterances:
            try:
                mels.append(utterance_mel(utt, cfg, seed))
                kept.append(utt)
            except AudioFileError as exc:
                if not cfg.skip_bad_files:
                    raise AudioFileError(f"{exc}; fix or remove it, or set data.skip_bad_files: true") from None
                skipped.append(str(exc))
                continue
            if was_cut(utt, cfg, seed):
                cut.append(str(utt.path or utt.name))
    note_cut(cut, cfg)
    return kept, mels, skipped


@contextlib.contextmanager
def single_thread():
    """Run tiny per-file tensor ops on one thread: on a busy machine a thread pool makes them ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def data_info(cfg: SpeechDataConfig, utterances: list[Utterance]) -> dict:
    """JSON facts the model and the artifact writers need: feature settings, classes, conditions."""
    labels = sorted({u.label for u in utterances if u.label is not None}, key=_natural)
    speakers = sorted({u.speaker for u in utterances if u.speaker is not None})
    conditions = []
    for name in cfg.condition_on:
        classes = labels if name == "label" else speakers
        if not classes:
            raise ValueError(f"condition_on: {name!r} but no utterance has a {name} "
                             f"(give a metadata CSV with a {name} column)")
        display = (LABEL_NAMES if name == "label" else SPEAKER_NAMES)[cfg.source]
        conditions.append({"key": name, "name": display, "classes": classes})
    return {"data": dataclasses.asdict(cfg), "n_mels": cfg.n_mels,
            "sample_rate": cfg.sample_rate, "labels": labels, "speakers": speakers,
            "label_name": LABEL_NAMES[cfg.source], "speaker_name": SPEAKER_NAMES[cfg.source],
            "condition_on": list(cfg.condition_on), "conditions": conditions,
            "class_names": labels}  # the engine's name for the classes of "label" (semi-supervised runs)


def median_frames(mels: list[Tensor]) -> int:
    """Median length in frames (what `vaekit sample` draws when no --seconds is given)."""
    return int(torch.tensor([m.shape[-1] for m in mels]).median())


def _natural(name: str):
    digits = re.match(r"^\d+", name)
    return (0, int(digits.group()), name) if digits else (1, 0, name)


def build_splits(cfg: SpeechDataConfig, seed: int, subset: SubsetConfig | None = None
                 ) -> tuple[MelDataset, MelDataset | None, MelDataset | None, dict]:
    """train, val, test datasets (each cut to the subset) and the info dict (mel statistics from the training split
    only)."""
    if cfg.source == "fsdd_strings":
        from .strings import build_string_splits

        return build_string_splits(cfg, seed, subset)
    listed = {"fsdd": list_fsdd, "folder": list_folder, "tones": list_tones}[cfg.source](cfg)
    utterances, mels, skipped = load_mels(cfg, listed, seed)
    if not utterances:
        raise ValueError(f"{cfg.root or cfg.source}: no usable utterances")
    info = data_info(cfg, utterances)
    info["skipped_files"] = skipped
    info["seed"] = seed
    mel_of = {id(u): m for u, m in zip(utterances, mels, strict=True)}
    train, val, test = (pick(split, subset, seed, name)
                        for split, name in zip(split_utterances(cfg, utterances, seed), SPLITS, strict=True))
    if not train:
        raise ValueError(f"{cfg.root or cfg.source}: the training split is empty")
    stats = MelStats.from_mels([mel_of[id(u)] for u in train])
    info.update(stats.to_info())
    info["median_frames"] = median_frames([mel_of[id(u)] for u in train])
    datasets = [MelDataset(split, [mel_of[id(u)] for u in split], stats, info) if split else None
                for split in (train, val, test)]
    if "speaker" in cfg.condition_on:
        info.update(speaker_moments(datasets[0], len(info["speakers"])))
    return datasets[0], datasets[1], datasets[2], info

