"""Audio in and out for the artifact verbs: input files as model batches with their lengths and levels, the
input's silence kept, and normalised mels written back as WAVs and PNGs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vaekit import VAE

from .data import note_cut, pad_mels, utterance_gain, utterance_mel, utterance_samples, was_cut
from .data_config import Utterance, frontend_from
from .features import MelFrontend, MelStats, hop_seconds, save_mel_png, silent_frames


def info_frontend(info: dict) -> MelFrontend:
    return frontend_from(info["data"])


def to_db(model: VAE, mel: Tensor, mask: Tensor) -> Tensor:
    """One normalised mel [F, T] cut to its mask's length, back in dB."""
    length = max(1, int(mask.sum().round()))
    return MelStats.from_info(model.config["info"]).denormalize(mel[:, :length].float().cpu())


def write_utterances(model: VAE, batch: dict, names: list[str], out_dir: Path, png_name: str | None,
                     griffin_lim_iters: int | None, samples: list[int] | None = None,
                     gains: list[float] | None = None) -> list[Path]:
    """Each normalised mel of batch {"mel", "mask"} as NAME.wav (Griffin-Lim), plus a PNG of all of them.

    samples: each WAV's length in samples (its input's); default (frames - 1) * hop_length. gains: the factor
    level normalisation multiplied each input by; the WAV is divided by it, back to the input's level.
    """
    from .audio import write_audio

    info = model.config["info"]
    frontend = info_frontend(info)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, mels = [], []
    for i, name in enumerate(names):
        mel_db = to_db(model, batch["mel"][i], batch["mask"][i])
        mels.append(mel_db)
        wave = frontend.to_audio(mel_db, n_iter=griffin_lim_iters, samples=None if samples is None else samples[i])
        if gains is not None:
            wave = wave / gains[i]
        written.append(write_audio(out_dir / f"{name}.wav", wave, info["sample_rate"]))
    if png_name:
        written.append(save_mel_png(out_dir / png_name, mels, names, hop_seconds(info)))
    return written


def load_wave(path: Path) -> Tensor:
    import soundfile as sf

    data, _ = sf.read(str(path), dtype="float32")
    return torch.from_numpy(data)


def encode_inputs(model: VAE, paths: list[str], trim: bool = True) -> dict:
    """Audio files -> a model-ready batch {"mel", "mask"} with the training data's processing.

    trim=False keeps leading and trailing silence, so a reconstruction is as long as its input file.
    """
    info = model.config["info"]
    data = info["data"] if trim else {**info["data"], "trim_db": None}
    mels, cut = [], []
    for path in paths:
        utt = Utterance(Path(path).stem, Path(path))
        mels.append(MelStats.from_info(info).normalize(utterance_mel(utt, data)))
        if was_cut(utt, data):
            cut.append(str(path))
    note_cut(cut, data)
    batch = pad_mels(mels)
    return {key: value.to(model.device) for key, value in batch.items()}


def read_as_encoded(model: VAE, paths: list[str], trim: bool = True):
    """Each file as encode_inputs reads it, with the data settings it was read with: (utterance, data) pairs."""
    info = model.config["info"]
    data = info["data"] if trim else {**info["data"], "trim_db": None}
    for path in paths:
        utt = Utterance(Path(path).stem, Path(path))
        utterance_mel(utt, data)  # cached: computed once with encode_inputs
        yield utt, data


def input_samples(model: VAE, paths: list[str], trim: bool = True) -> list[int]:
    """Each file's length in samples at the model's rate, processed as encode_inputs processes it."""
    return [utterance_samples(utt, data) for utt, data in read_as_encoded(model, paths, trim)]


def input_gains(model: VAE, paths: list[str], trim: bool = True) -> list[float]:
    """The factor the training data's level normalisation multiplied each file by (as encode_inputs reads it)."""
    return [utterance_gain(utt, data) for utt, data in read_as_encoded(model, paths, trim)]


def keep_silence(model: VAE, x: dict, out: dict) -> dict:
    """out {"mel", "mask"} with x's own log-mel in x's silent frames: those more than data.trim_db below its
    loudest frame, which training trims away (nothing changes when the recipe does not trim)."""
    trim_db = model.config["info"]["data"].get("trim_db")
    if trim_db is None:
        return out
    mel = out["mel"].clone()
    for i in range(mel.shape[0]):
        length = max(1, int(x["mask"][i].sum().round()))
        silent = silent_frames(to_db(model, x["mel"][i], x["mask"][i]), trim_db).to(mel.device)
        mel[i, :, :length] = torch.where(silent, x["mel"][i, :, :length], mel[i, :, :length])
    return {**out, "mel": mel}
