"""MelSpectrogramVAE: a 2-D conv encoder/decoder over (mel bins x frames) with masked likelihoods.

Utterances have different lengths; both networks work on a fixed canvas of max_frames frames. The
encoder sees the mel with padding zeroed plus the mask as a second channel, so padding an input
further changes nothing. The decoder predicts the whole canvas and a distribution over the
utterance length; log p(x|z) = log p(T|z) + sum over the T real frames of log p(mel frame|z), so
padding never enters the likelihood and generated utterances get a length of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit import VAE, ConditionEmbedding, DiagonalGaussian, LearnedConditionalPrior, get_likelihood


@dataclass
class SpeechModelConfig:
    """The recipe's model section."""

    latent_dim: int = 32
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # the three stride-2 stages
    hidden: int = 256
    likelihood: Literal["gaussian", "laplace"] = "gaussian"
    scale: float | str = "learned"  # a fixed number, "learned" (one scalar) or "predicted" (per bin and frame)
    condition_dim: int = 64  # size of the condition embedding (CVAE)
    prior: Literal["standard", "learned"] = "standard"  # CVAE: N(0, I) or a learned p(z|c)

    def __post_init__(self):
        if len(self.channels) != 3:
            raise ValueError(f"channels: expected three stage widths, got {self.channels}")
        if isinstance(self.scale, str) and self.scale not in ("learned", "predicted"):
            raise ValueError(f"scale: expected a positive number, 'learned' or 'predicted', got {self.scale!r}")


def fit_canvas(mel: Tensor, mask: Tensor, frames: int) -> tuple[Tensor, Tensor]:
    """Pad or cut [B, F, T] and [B, T] to `frames`, zeroing the mel wherever the mask is 0."""
    length = mel.shape[-1]
    if length < frames:
        mel, mask = F.pad(mel, (0, frames - length)), F.pad(mask, (0, frames - length))
    mel, mask = mel[..., :frames], mask[..., :frames]
    return mel * mask[:, None, :], mask


def mask_of(x: dict) -> Tensor:
    """The [B, T] frame mask from a batch dict holding mask or lengths."""
    if "mask" in x:
        return x["mask"].to(x["mel"].dtype)
    frames = torch.arange(x["mel"].shape[-1], device=x["mel"].device)
    return (frames[None, :] < x["lengths"][:, None]).to(x["mel"].dtype)


class MelEncoder(nn.Module):
    """q(z|mel, c): three stride-2 conv stages over (mel bins x frames), then an MLP to mean and log-variance."""

    def __init__(self, n_mels: int, frames: int, cfg: SpeechModelConfig, condition: ConditionEmbedding | None):
        super().__init__()
        self.frames = frames
        c1, c2, c3 = cfg.channels
        self.convs = nn.Sequential(
            nn.Conv2d(2, c1, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.SiLU(),
        )
        self.condition = condition
        flat = c3 * (n_mels // 8) * (frames // 8)
        extra = condition.out_dim if condition is not None else 0
        self.head = nn.Sequential(nn.Linear(flat + extra, cfg.hidden), nn.SiLU(),
                                  nn.Linear(cfg.hidden, 2 * cfg.latent_dim))

    def forward(self, x: dict, c: Tensor | None = None) -> DiagonalGaussian:
        mel, mask = fit_canvas(x["mel"], mask_of(x), self.frames)
        mask_plane = mask[:, None, None, :].expand(-1, 1, mel.shape[1], -1)
        h = self.convs(torch.cat([mel[:, None], mask_plane], dim=1)).flatten(1)
        if self.condition is not None:
            h = torch.cat([h, self.condition(c)], dim=-1)
        mean, logvar = self.head(h).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar.clamp(-12.0, 8.0))


class MelDecoder(nn.Module):
    """p(mel, T | z, c): transposed convs back to (mel bins x frames) and a categorical over lengths."""

    def __init__(self, n_mels: int, frames: int, cfg: SpeechModelConfig, condition: ConditionEmbedding | None):
        super().__init__()
        self.n_mels, self.frames = n_mels, frames
        c1, c2, c3 = cfg.channels
        self.likelihood = get_likelihood(cfg.likelihood, scale=cfg.scale)
        self.params = self.likelihood.params_per_channel
        self.condition = condition
        extra = condition.out_dim if condition is not None else 0
        self.grid = (c3, n_mels // 8, frames // 8)
        self.stem = nn.Sequential(nn.Linear(cfg.latent_dim + extra, cfg.hidden), nn.SiLU())
        self.to_grid = nn.Linear(cfg.hidden, c3 * (n_mels // 8) * (frames // 8))
        self.length_head = nn.Linear(cfg.hidden, frames)  # logits of T = 1 .. frames
        self.deconvs = nn.Sequential(
            nn.SiLU(),
            nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c1, c1, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c1, self.params, 3, padding=1),
        )

    def features(self, z: Tensor, c: Tensor | None) -> Tensor:
        if self.condition is not None:
            z = torch.cat([z, self.condition(c)], dim=-1)
        return self.stem(z)

    def outputs(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Likelihood parameters [B, params * n_mels, frames] and length log-probabilities [B, frames]."""
        h = self.features(z, c)
        grid = self.to_grid(h).view(-1, *self.grid)
        params = self.deconvs(grid).reshape(z.shape[0], self.params * self.n_mels, self.frames)
        return params, F.log_softmax(self.length_head(h), dim=-1)

    def log_prob(self, x: dict, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(mel, T | z, c) per utterance: [B] nats (padding excluded by the mask)."""
        params, log_p_length = self.outputs(z, c)
        mel, mask = fit_canvas(x["mel"], mask_of(x), self.frames)
        log_p_mel = self.likelihood.log_prob(params, mel, mask[:, None, :])
        lengths = mask.sum(-1).round().long().clamp(1, self.frames)
        return log_p_mel + log_p_length.gather(1, (lengths - 1)[:, None]).squeeze(1)

    @torch.no_grad()
    def generate(self, z: Tensor, c: Tensor | None = None, lengths: Tensor | None = None,
                 sample_mel: bool = False) -> dict:
        """{"mel": [B, n_mels, frames] (the likelihood's mean unless sample_mel), "mask": [B, frames]}.

        The length is the most likely one under p(T|z, c) unless `lengths` [B] is given (reconstruction).
        """
        params, log_p_length = self.outputs(z, c)
        mel = self.likelihood.sample(params) if sample_mel else self.likelihood.mean(params)
        if lengths is None:
            lengths = log_p_length.argmax(-1) + 1
        frame = torch.arange(self.frames, device=z.device)
        mask = (frame[None, :] < lengths.to(z.device)[:, None]).to(mel.dtype)
        return {"mel": mel * mask[:, None, :], "mask": mask}


def build_speech_vae(cfg: SpeechModelConfig, info: dict) -> VAE:
    """The VAE (a CVAE when the data conditions on label and/or speaker) from the model config and data info."""
    n_mels, frames = info["n_mels"], info["max_frames"]
    counts = [len(cond["classes"]) for cond in info.get("conditions", [])]

    def embedding() -> ConditionEmbedding | None:
        return ConditionEmbedding(counts, cfg.condition_dim) if counts else None

    prior = None
    if counts and cfg.prior == "learned":
        prior = LearnedConditionalPrior(cfg.latent_dim, embedding())
    encoder = MelEncoder(n_mels, frames, cfg, embedding())
    decoder = MelDecoder(n_mels, frames, cfg, embedding())
    return VAE(encoder, decoder, cfg.latent_dim, prior=prior)
