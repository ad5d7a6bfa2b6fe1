"""Seconds, mel frames and latent steps: how long drawn utterances are, and latent sequences resampled in time."""

from __future__ import annotations

import torch
from torch import Tensor

from vaekit import VAE, PluginError


def seconds_to_frames(info: dict, seconds: float | None) -> int:
    """Mel frames of `seconds` of audio; None gives the training utterances' median length."""
    if seconds is not None and not seconds > 0:
        raise PluginError(f"--seconds: expected a positive number of seconds, got {seconds}")
    if seconds is None:
        return int(info.get("median_frames", 64))
    return 1 + int(seconds * info["sample_rate"]) // info["data"]["hop_length"]


def seconds_to_samples(info: dict, seconds: float) -> int:
    """Samples of `seconds` of audio at the model's rate (the WAV's length; its frames: seconds_to_frames)."""
    return int(seconds * info["sample_rate"])


def latent_steps(model: VAE, frames: int) -> int:
    """Latent steps that decode to `frames` mel frames: the utterance latent's, then one per stretch of time."""
    return model.decoder.utterance_steps - (-frames // model.decoder.reduction)


@torch.no_grad()
def sample_utterances(model: VAE, n: int, conditions: Tensor | None, frames: int, temperature: float = 1.0) -> dict:
    """n prior draws of `frames` frames each, decoded: {"mel": [n, F, frames], "mask": [n, frames]}."""
    z = model.sample_latents(n, conditions, temperature, length=latent_steps(model, frames))
    return model.decode(z, conditions, lengths=torch.full((n,), frames, device=model.device))


def resample_steps(z: Tensor, steps: int) -> Tensor:
    """A latent sequence [T', D] stretched or squeezed to `steps` steps by linear interpolation in time."""
    if z.shape[0] == steps:
        return z
    if z.shape[0] == 1:
        return z.expand(steps, -1)
    return torch.nn.functional.interpolate(z.T[None], size=steps, mode="linear", align_corners=True)[0].T
