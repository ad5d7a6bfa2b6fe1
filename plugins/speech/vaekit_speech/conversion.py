"""Voice conversion: a recording of condition c turned into condition c' (another speaker), as long as its input.

Every way starts from the posterior mean z of the recording encoded under its own condition c:

- residual: x + smooth(E[mel | z, c'] - E[mel | z, c]). The input's log-mel plus the decoder's
  difference between the two voices (the spectrum differential of Kobayashi et al. 2014). What the code
  does not hold (the detail a reconstruction misses) passes through from the input unchanged; with c' = c
  it returns x itself. smooth is a moving average over time of model.conversion_smoothing_ms (0: frame by
  frame): it keeps the change of the voice's spectrum and drops the frame-to-frame detail that carries the
  decoder's rendering of the words.
- decoded (models' default): E[mel | z, c'], the decoder's own rendering: every detail the code lost is lost.
- moments (a speaker-conditioned model): each log-mel bin of x moved from the source speaker's mean and spread
  to the target's (the training split's statistics, info["speaker_moments"]), plus conversion_scale times
  smooth(change - its average over the recording), change = E[mel | z, c'] - E[mel | z, c]. The statistics
  carry the voice's average spectrum; the decoder adds what changes with the sounds, scaled down because its
  rendering under another voice also moves the words. It does not move the pitch to the target speaker's: the
  harmonics stay where the input's log-mel has them, only each bin's level moves (decoded does move it).

The model's `model.conversion` (recipe) picks the default of `reconstruct --condition` and of eval's
`*_converted` figures; eval reports every other way the model can take too (`*_converted_decoded`,
`*_converted_residual`, `*_converted_moments`).

recipes/speech/fsdd_strings.yaml converts by moments, averaged over 144 ms (conversion_smoothing_ms) with
conversion_scale 0.5; recipes/speech/fsdd_cvae.yaml, whose condition also gives the digit, converts decoded.
Longer windows keep more of the words and less of the target voice. What each reaches:
benchmarks/results/fsdd_strings.json and fsdd_cvae.json.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vaekit import VAE

from .features import MelStats, hop_seconds

CONVERSIONS = ("residual", "decoded", "moments")


def conversion_of(model: VAE) -> str:
    """The model's default way to convert (its recipe's model.conversion; decoded for older models)."""
    return model.config.get("model", {}).get("conversion", "decoded")


def smoothing_of(model: VAE) -> float:
    """The model's default time window (ms) for residual conversion's change of voice (0 for older models)."""
    return float(model.config.get("model", {}).get("conversion_smoothing_ms", 0.0))


def window_frames(model: VAE, smoothing_ms: float) -> int:
    """The odd number of frames nearest smoothing_ms (1: no smoothing; 200 ms at 16 ms frames: 13)."""
    if not smoothing_ms >= 0:
        raise ValueError(f"conversion_smoothing_ms: expected 0 or more milliseconds, got {smoothing_ms}")
    frames = smoothing_ms / (1000 * hop_seconds(model.config["info"]))
    return 2 * math.floor(frames / 2) + 1  # odd 2k + 1 with k = round((frames - 1) / 2)


def scale_of(model: VAE) -> float:
    """moments: the share of the decoder's time-varying change of voice added (the model's conversion_scale)."""
    return float(model.config.get("model", {}).get("conversion_scale", 1.0))


def available_conversions(model: VAE) -> tuple[str, ...]:
    """The ways this model can convert: moments needs a speaker condition and the training split's statistics."""
    info = model.config["info"]
    has_moments = "speaker" in info.get("condition_on", []) and "speaker_moments" in info
    return tuple(how for how in CONVERSIONS if how != "moments" or has_moments)


def speaker_moments(dataset, n_speakers: int) -> dict:
    """{"speaker_moments": {"mean", "std"}}: each speaker's per-bin mean and spread of the dataset's normalised
    log-mels ([n_speakers][n_mels] lists, for the model's info); a speaker without frames gets 0 and 1."""
    n_mels = dataset.mels[0].shape[0]
    by_speaker = [[] for _ in range(n_speakers)]
    for i, mel in enumerate(dataset.mels):
        speaker = dataset.targets(i)[1]
        if speaker >= 0:
            by_speaker[speaker].append(mel)
    stats = [MelStats.from_mels(mels) if mels else MelStats(torch.zeros(n_mels), torch.ones(n_mels))
             for mels in by_speaker]
    return {"speaker_moments": {"mean": [s.mean.tolist() for s in stats], "std": [s.std.tolist() for s in stats]}}


def convert(model: VAE, x: dict, source: Tensor, target: Tensor, how: str = "residual",
            z: Tensor | None = None, smoothing_ms: float | None = None) -> dict:
    """{"mel": [B, n_mels, T], "mask": [B, T]}: x (encoded under `source`) as condition `target`.

    z: x's posterior mean, when the caller has it already. smoothing_ms: residual's window (default: the model's).
    """
    return conversions(model, x, source, target, (how,), z, smoothing_ms)[how]


@torch.no_grad()
def conversions(model: VAE, x: dict, source: Tensor, target: Tensor, ways: tuple[str, ...] = CONVERSIONS,
                z: Tensor | None = None, smoothing_ms: float | None = None) -> dict[str, dict]:
    """{way: {"mel", "mask"}} for each of `ways`, decoding under the target (and the source) once for all."""
    for how in ways:
        if how not in CONVERSIONS:
            raise ValueError(f"conversion: expected one of {', '.join(CONVERSIONS)}, got {how!r}")
        if how not in available_conversions(model):
            raise ValueError("conversion 'moments' moves the speaker's per-bin statistics: it needs a model "
                             "conditioned on speaker, trained with this version (its info has no speaker_moments); "
                             "use residual or decoded")
    window = window_frames(model, smoothing_of(model) if smoothing_ms is None else smoothing_ms)
    mask = x["mask"]
    lengths = mask.sum(-1).round().long()
    frames = x["mel"].shape[-1]
    if z is None:
        z = model.encode(x, source).mode()
    converted = decoded_mel(model, z, target, lengths, frames)
    out = {"decoded": {"mel": converted, "mask": mask}} if "decoded" in ways else {}
    own = decoded_mel(model, z, source, lengths, frames) if {"residual", "moments"} & set(ways) else None
    if "residual" in ways:
        out["residual"] = {"mel": residual_mel(x, converted, own, window), "mask": mask}
    if "moments" in ways:
        column = model.config["info"]["condition_on"].index("speaker")
        moved = moved_moments(x, model.config["info"]["speaker_moments"], source[:, column], target[:, column])
        out["moments"] = {"mel": moments_mel(x, moved, converted, own, window, scale_of(model)), "mask": mask}
    return out


def moved_moments(x: dict, moments: dict, source: Tensor, target: Tensor) -> Tensor:
    """x's log-mel [B, F, T] with each bin's mean and spread moved from the source speaker's to the target's."""
    mean, std = (torch.tensor(moments[k], dtype=x["mel"].dtype, device=x["mel"].device) for k in ("mean", "std"))
    src, tgt = source.long(), target.long()
    if (src < 0).any() or (tgt < 0).any():
        raise ValueError("conversion 'moments': needs the source and target speakers (e.g. --source speaker=theo "
                         "--condition speaker=jackson)")
    return (x["mel"] - mean[src][..., None]) * (std[tgt] / std[src])[..., None] + mean[tgt][..., None]


def moments_mel(x: dict, moved: Tensor, converted: Tensor, own: Tensor, window: int, scale: float) -> Tensor:
    """The moved log-mel plus `scale` times the decoder's change of voice less its average over the recording,
    averaged over `window` frames: the statistics carry the voice's average spectrum, the decoder what varies
    with the sounds; zero past x's mask."""
    mask = x["mask"]
    valid = mask[:, None, :]
    change = (converted - own) * valid
    varying = (change - change.sum(-1, keepdim=True) / valid.sum(-1, keepdim=True).clamp(min=1)) * valid
    return (moved + scale * moving_average(varying, mask, window)) * valid


def residual_mel(x: dict, converted: Tensor, own: Tensor, window: int) -> Tensor:
    """x's log-mel [B, F, T] plus the change of voice converted - own (decodes under the target and x's own
    condition), averaged over `window` frames (1: frame by frame); zero past x's mask."""
    mask = x["mask"]
    change = moving_average((converted - own) * mask[:, None, :], mask, window)
    return (x["mel"] + change) * mask[:, None, :]


def moving_average(values: Tensor, mask: Tensor, window: int) -> Tensor:
    """values [B, F, T] averaged over `window` frames (odd) centred on each, over valid frames of mask [B, T] only."""
    if window <= 1:
        return values
    valid = mask[:, None, :].to(values.dtype)
    total = F.avg_pool1d(values * valid, window, 1, window // 2, count_include_pad=False)
    share = F.avg_pool1d(valid, window, 1, window // 2, count_include_pad=False)  # of the window that is valid
    return total / share.clamp(min=1e-6) * valid


def decoded_mel(model: VAE, z: Tensor, condition: Tensor, lengths: Tensor, frames: int) -> Tensor:
    """E[mel | z, condition] over exactly `frames` frames (zero past each length)."""
    return fit_frames(model.decode(z, condition, lengths=lengths)["mel"], frames)


def fit_frames(mel: Tensor, frames: int) -> Tensor:
    """mel [..., T] cut or zero-padded to exactly `frames` frames."""
    mel = mel[..., :frames]
    return F.pad(mel, (0, frames - mel.shape[-1]))
