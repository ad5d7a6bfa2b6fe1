"""Distances on the linear spectrum of waveforms (what a listener gets), beside the model's mel-scale ones.

    lsd = linear_lsd(reference_wave, resynthesized_wave, frontend)     # dB, log-spectral distance per utterance
"""

from __future__ import annotations

import torch
from torch import Tensor

from .features import DB_FLOOR, MelFrontend


def linear_power_db(wave: Tensor, frontend: MelFrontend) -> Tensor:
    """|STFT|^2 in dB [n_fft / 2 + 1, frames] with the frontend's window and hop, floored top_db below the peak."""
    window = torch.hann_window(frontend.n_fft, device=wave.device)
    spec = torch.stft(wave.float(), frontend.n_fft, frontend.hop_length, window=window, return_complex=True)
    db = 10.0 * torch.log10(spec.abs().pow(2).clamp(min=DB_FLOOR))
    return torch.maximum(db, db.amax() - frontend.top_db)


def linear_lsd(reference: Tensor, estimate: Tensor, frontend: MelFrontend) -> float:
    """Log-spectral distance (dB) on the linear spectrum: mean over frames of the RMS dB error over frequency.

    The estimate is cut or zero-padded to the reference's length first; both are floored top_db below the
    reference's peak, so silence in one and near-silence in the other do not dominate.
    """
    estimate = estimate[: reference.numel()]
    estimate = torch.nn.functional.pad(estimate, (0, reference.numel() - estimate.numel()))
    ref, est = linear_power_db(reference, frontend), linear_power_db(estimate, frontend)
    floor = ref.amax() - frontend.top_db
    ref, est = torch.maximum(ref, floor), torch.maximum(est, floor)
    return float((ref - est).pow(2).mean(0).sqrt().mean())
