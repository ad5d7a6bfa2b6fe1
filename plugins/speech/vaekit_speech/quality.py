"""Speech quality against a clean reference: SI-SDR (dB), PESQ (narrow-band, 8 kHz) and STOI.

    si_sdr(clean, enhanced)              # dB; scale-invariant signal-to-distortion ratio (Le Roux et al. 2019)
    pesq_nb(clean, enhanced, 8000)       # MOS-LQO, about 1.0 (bad) to 4.5 (clean); the `pesq` package
    stoi(clean, enhanced, 8000)          # 0 to 1; the `pystoi` package

pesq and pystoi come with the speech plugin's `enhance` extra (pip install -e "plugins/speech[enhance]").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

PESQ_RATE = 8000  # narrow-band PESQ scores 8 kHz audio


def si_sdr(reference: Tensor, estimate: Tensor) -> float:
    """Scale-invariant SDR (dB): the estimate's part along the reference against the rest, means removed."""
    reference = reference.double() - reference.double().mean()
    estimate = estimate.double() - estimate.double().mean()
    target = (estimate @ reference) / (reference @ reference).clamp(min=1e-20) * reference
    residual = estimate - target
    return float(10 * torch.log10(target.pow(2).sum().clamp(min=1e-20) / residual.pow(2).sum().clamp(min=1e-20)))


def pesq_nb(reference: Tensor, estimate: Tensor, sample_rate: int) -> float:
    """Narrow-band PESQ (MOS-LQO) of the estimate against the reference, both at 8 kHz."""
    from pesq import pesq  # optional dependency (the plugin's enhance extra)

    if sample_rate != PESQ_RATE:
        raise ValueError(f"PESQ: narrow-band PESQ scores {PESQ_RATE} Hz audio, got {sample_rate} Hz")
    from pesq import PesqError

    try:
        return float(pesq(sample_rate, _numpy(reference), _numpy(estimate), "nb"))
    except PesqError as exc:  # shorter than 0.25 s, no speech found, ...
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"PESQ: cannot score this pair: {message}") from None


def stoi(reference: Tensor, estimate: Tensor, sample_rate: int) -> float:
    """Short-time objective intelligibility (0 to 1) of the estimate against the reference."""
    from pystoi import stoi as pystoi_stoi  # optional dependency (the plugin's enhance extra)

    return float(pystoi_stoi(_numpy(reference), _numpy(estimate), sample_rate, extended=False))


def quality(reference: Tensor, estimate: Tensor, sample_rate: int) -> dict[str, float]:
    """{"pesq", "stoi", "si_sdr"} of an estimate against its clean reference (same length and rate)."""
    return {"pesq": pesq_nb(reference, estimate, sample_rate), "stoi": stoi(reference, estimate, sample_rate),
            "si_sdr": si_sdr(reference, estimate)}


def _numpy(wave: Tensor) -> np.ndarray:
    return wave.detach().double().cpu().numpy()
