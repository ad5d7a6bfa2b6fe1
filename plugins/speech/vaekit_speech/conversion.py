"""Voice conversion: a recording of condition c turned into condition c' (another speaker), as long as its input.

Both ways start from the posterior mean z of the recording encoded under its own condition c:

- residual: x + E[mel | z, c'] - E[mel | z, c]. The input's log-mel plus the decoder's
  difference between the two voices (the spectrum differential of Kobayashi et al. 2014). What the code
  does not hold (the detail a reconstruction misses) passes through from the input unchanged; with c' = c
  it returns x itself.
- decoded (models' default): E[mel | z, c'], the decoder's own rendering: every detail the code lost is lost.

The model's `model.conversion` (recipe) picks the default of `reconstruct --condition` and of eval's
`*_converted` figures; eval reports the other way too (`*_converted_decoded` or `*_converted_residual`).

On fsdd_strings (900 CPU steps, two seeds; benchmarks/speech_strings.py) residual conversions kept 70.0% and
74.5% of the words' digits against 50.9% and 58.6% decoded, while 97.7% and 97.3% of words were heard as the
target speaker (decoded 99.9% and 99.8%), so recipes/speech/fsdd_strings.yaml uses it. A digit + speaker CVAE
(fsdd_cvae) gets the digit from its condition and converts better decoded: 99.0% / 99.3% of digits and 99.3% /
99.3% target speaker, against 97.3% / 95.7% and 96.0% / 96.7% residual (`python benchmarks/speech_fsdd.py
--recipes fsdd_cvae --budget-seconds 600 --iw-samples 2 --threads 1 seed=S`, S = 0, 1), so it stays decoded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vaekit import VAE

CONVERSIONS = ("residual", "decoded")


def conversion_of(model: VAE) -> str:
    """The model's default way to convert (its recipe's model.conversion; decoded for older models)."""
    return model.config.get("model", {}).get("conversion", "decoded")


def other_conversion(how: str) -> str:
    """The way that is not `how`."""
    return CONVERSIONS[1 - CONVERSIONS.index(how)]


def convert(model: VAE, x: dict, source: Tensor, target: Tensor, how: str = "residual",
            z: Tensor | None = None) -> dict:
    """{"mel": [B, n_mels, T], "mask": [B, T]}: x (encoded under `source`) as condition `target`.

    z: x's posterior mean, when the caller has it already.
    """
    return conversions(model, x, source, target, (how,), z)[how]


@torch.no_grad()
def conversions(model: VAE, x: dict, source: Tensor, target: Tensor, ways: tuple[str, ...] = CONVERSIONS,
                z: Tensor | None = None) -> dict[str, dict]:
    """{way: {"mel", "mask"}} for each of `ways`, decoding under the target (and the source) once for all."""
    for how in ways:
        if how not in CONVERSIONS:
            raise ValueError(f"conversion: expected one of {', '.join(CONVERSIONS)}, got {how!r}")
    mask = x["mask"]
    lengths = mask.sum(-1).round().long()
    frames = x["mel"].shape[-1]
    if z is None:
        z = model.encode(x, source).mode()
    converted = decoded_mel(model, z, target, lengths, frames)
    out = {"decoded": {"mel": converted, "mask": mask}} if "decoded" in ways else {}
    if "residual" in ways:
        own = decoded_mel(model, z, source, lengths, frames)
        out["residual"] = {"mel": (x["mel"] + converted - own) * mask[:, None, :], "mask": mask}
    return out


def decoded_mel(model: VAE, z: Tensor, condition: Tensor, lengths: Tensor, frames: int) -> Tensor:
    """E[mel | z, condition] over exactly `frames` frames (zero past each length)."""
    mel = model.decode(z, condition, lengths=lengths)["mel"][..., :frames]
    return F.pad(mel, (0, frames - mel.shape[-1]))
