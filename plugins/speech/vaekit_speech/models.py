"""MelSpectrogramVAE: 1-D convolutions over time, a latent per stretch of time, masked likelihoods.

Mel bins are channels and frames are time, so an utterance of any length (0.3 s or 30 s) is encoded to a
latent z [B, T', D] with one step per 2**len(channels) frames, masked past each utterance's end, and
decoded back to exactly its number of frames. Every layer's output is zeroed past the end at its own
resolution, so a padded utterance gets the same posterior and likelihood as the same utterance alone:

    log p(x|z) = sum over the T real frames of log p(mel frame | z, c)     (nats)

Inputs longer than model.chunk_seconds are encoded and decoded in chunks whose overlap covers the
networks' receptive field, so memory stays bounded and the result equals the whole-sequence one.
With model.utterance_latent, step 0 of z is one latent for the whole utterance (pooled over its valid
steps), decoded beside every stretch: z [B, 1 + T', D].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit import VAE, ConditionEmbedding, DiagonalGaussian, LearnedConditionalPrior, get_likelihood


@dataclass
class SpeechModelConfig:
    """The recipe's model section."""

    latent_dim: int = 16  # D: latent units per latent step
    channels: list[int] = field(default_factory=lambda: [128, 192, 256])  # stride-2 stages over time
    hidden: int = 256  # width of the per-frame layers next to the mel
    kernel: int = 5  # kernel size (frames) of the convolutions inside each stage
    likelihood: Literal["gaussian", "laplace"] = "gaussian"
    scale: float | str = "learned"  # a fixed number, "learned" (one scalar) or "predicted" (per bin and frame)
    condition_dim: int = 64  # size of the condition embedding (CVAE)
    prior: Literal["standard", "learned"] = "standard"  # CVAE: N(0, I) or a learned p(z|c), at every step
    chunk_seconds: float = 60.0  # longer inputs are processed in overlapping chunks (bounded memory)
    # The encoder sees each utterance's mel with its own per-bin mean and spread removed (instance norm, as in
    # AdaIN-VC): the voice's average spectrum never reaches the latent, so the decoder must take it from the
    # speaker condition. Meant for speaker CVAEs (voice conversion).
    instance_norm: bool = False
    # A per-utterance latent beside the per-stretch ones: step 0 of z, pooled over the whole utterance (never
    # masked), seen by the decoder at every frame. z is then [B, 1 + T', D].
    utterance_latent: bool = False
    # Layer norm over channels at every frame after each residual block (it never mixes frames, so padding and
    # chunking stay exact). It damps the loss spikes a rare input can cause through the unnormalised stack, but
    # learns more slowly, so it is off by default.
    block_norm: bool = False
    # How `reconstruct --condition` and eval convert a recording (vaekit_speech.conversion): "decoded" (the
    # decoder's rendering under the new condition) or "residual" (the input plus the decoder's change of voice).
    # "moments": the input's per-bin mean and spread moved to the target speaker's (training statistics) plus
    # conversion_scale times the decoder's time-varying change of voice.
    conversion: Literal["decoded", "residual", "moments"] = "decoded"
    # residual and moments: the change of voice averaged over this many ms (0: frame by frame). Longer keeps more
    # of the words and less of the target voice (vaekit_speech.conversion has the measured trade).
    conversion_smoothing_ms: float = 0.0
    conversion_scale: float = 1.0  # moments: the share of the change of voice added (0: the statistics alone)

    def __post_init__(self):
        if not 1 <= len(self.channels) <= 6:
            raise ValueError(f"channels: expected 1 to 6 stage widths (2**stages frames per latent step), "
                             f"got {self.channels}")
        if isinstance(self.scale, str) and self.scale not in ("learned", "predicted"):
            raise ValueError(f"scale: expected a positive number, 'learned' or 'predicted', got {self.scale!r}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd number of frames, got {self.kernel}")
        if not self.conversion_smoothing_ms >= 0:
            raise ValueError(f"conversion_smoothing_ms: expected 0 or more milliseconds, "
                             f"got {self.conversion_smoothing_ms}")
        if not self.conversion_scale >= 0:
            raise ValueError(f"conversion_scale: expected 0 or more, got {self.conversion_scale}")
        if self.chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds: expected a positive number of seconds, got {self.chunk_seconds}")

    @property
    def reduction(self) -> int:
        """Frames per latent step."""
        return 2 ** len(self.channels)


def mask_of(x: dict) -> Tensor:
    """The [B, T] frame mask (float) from a batch dict holding mask or lengths."""
    if "mask" in x:
        return x["mask"].to(x["mel"].dtype)
    frames = torch.arange(x["mel"].shape[-1], device=x["mel"].device)
    return (frames[None, :] < x["lengths"][:, None]).to(x["mel"].dtype)


def frame_mask(lengths: Tensor, frames: int) -> Tensor:
    """Float mask [B, frames]: 1 on the first lengths[b] frames."""
    return (torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]).float()


def pyramid(mask: Tensor, stages: int) -> list[Tensor]:
    """Masks [B, 1, T / 2**l] for l = 0 .. stages; a step is valid when any frame it covers is."""
    masks = [mask[:, None, :]]
    for _ in range(stages):
        masks.append(F.max_pool1d(masks[-1], 2, 2))
    return masks


def latent_steps(frames: int | Tensor, reduction: int):
    """Latent steps covering `frames` frames (ceil)."""
    return (frames + reduction - 1) // reduction


class ResBlock(nn.Module):
    """x + conv(silu(conv(x))), layer-normed over channels per frame if `norm`, zeroed past the end (same length)."""

    def __init__(self, width: int, kernel: int, norm: bool = False):
        super().__init__()
        self.a = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.b = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(width) if norm else None

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        h = h + self.b(F.silu(self.a(h)) * mask)
        if self.norm is not None:
            h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        return h * mask


class MelEncoder(nn.Module):
    """q(z|mel, c): stride-2 conv stages over frames, then mean and log-variance per latent step."""

    def __init__(self, n_mels: int, cfg: SpeechModelConfig, condition: ConditionEmbedding | None):
        super().__init__()
        self.reduction, self.stages = cfg.reduction, len(cfg.channels)
        extra = condition.out_dim if condition is not None else 0
        self.condition = condition
        self.stem = nn.Conv1d(n_mels + 1 + extra, cfg.hidden, cfg.kernel, padding=cfg.kernel // 2)
        self.stem_block = ResBlock(cfg.hidden, cfg.kernel, cfg.block_norm)
        widths = [cfg.hidden, *cfg.channels]
        pairs = zip(widths, widths[1:], strict=False)
        self.down = nn.ModuleList(nn.Conv1d(a, b, 4, stride=2, padding=1) for a, b in pairs)
        self.blocks = nn.ModuleList(ResBlock(w, cfg.kernel, cfg.block_norm) for w in cfg.channels)
        self.latent_dim, self.utterance = cfg.latent_dim, cfg.utterance_latent
        pooled = cfg.channels[-1] if cfg.utterance_latent else 0  # features averaged into the utterance latent
        self.head = nn.Conv1d(cfg.channels[-1], 2 * cfg.latent_dim + pooled, 3, padding=1)
        if cfg.utterance_latent:
            self.utterance_head = nn.Sequential(nn.SiLU(), nn.Linear(pooled, 2 * cfg.latent_dim))
        self.chunk_frames = 0  # set by build_speech_vae from chunk_seconds
        self.context = receptive_context(cfg)
        self.instance_norm = cfg.instance_norm

    def forward(self, x: dict, c: Tensor | None = None) -> DiagonalGaussian:
        mel, mask = x["mel"], mask_of(x)
        if self.instance_norm:  # over the whole utterance, before any chunking
            mel = instance_normalize(mel, mask)
        out, valid = over_chunks(lambda m, k: self.params(m, k, c), mel, mask, self.reduction, self.chunk_frames,
                                 self.context)
        mean, logvar, pooled = out.split([self.latent_dim, self.latent_dim, out.shape[-1] - 2 * self.latent_dim], -1)
        # Padded steps carry the prior's N(0, I) exactly; the engine's mask keeps them out of every sum anyway.
        keep = valid[..., None]
        mean, logvar = torch.where(keep, mean, 0.0), torch.where(keep, logvar.clamp(-12.0, 8.0), 0.0)
        if self.utterance:  # the per-step features' mean over valid steps: exact under padding and chunking
            weight = keep.to(pooled.dtype)
            mean_feature = (pooled * weight).sum(1) / weight.sum(1).clamp(min=1)
            u_mean, u_logvar = self.utterance_head(mean_feature).chunk(2, dim=-1)
            mean = torch.cat([u_mean[:, None], mean], 1)
            logvar = torch.cat([u_logvar[:, None].clamp(-12.0, 8.0), logvar], 1)
            valid = torch.cat([torch.ones_like(valid[:, :1]), valid], 1)
        return DiagonalGaussian(mean, logvar, event_dims=2, mask=valid)

    def params(self, mel: Tensor, mask: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        """Per-step head outputs [B, T', 2D (+ pooled)] and the latent mask [B, T'] (bool) of a mel [B, F, T]."""
        mel, mask = pad_to_multiple(mel, mask, self.reduction)
        masks = pyramid(mask, self.stages)
        inputs = [mel * masks[0], masks[0]]
        if self.condition is not None:
            inputs.append(self.condition(c)[:, :, None].expand(-1, -1, mel.shape[-1]) * masks[0])
        h = F.silu(self.stem(torch.cat(inputs, 1))) * masks[0]
        h = self.stem_block(h, masks[0])
        for level, (down, block) in enumerate(zip(self.down, self.blocks, strict=True), start=1):
            h = block(F.silu(down(h)) * masks[level], masks[level])
        return self.head(h).transpose(1, 2), masks[-1][:, 0] > 0


class MelDecoder(nn.Module):
    """p(mel | z, c): transposed-conv stages from latent steps back to frames, a likelihood per bin and frame."""

    def __init__(self, n_mels: int, cfg: SpeechModelConfig, condition: ConditionEmbedding | None):
        super().__init__()
        self.n_mels, self.reduction, self.stages = n_mels, cfg.reduction, len(cfg.channels)
        self.latent_dim = cfg.latent_dim
        self.utterance_steps = 1 if cfg.utterance_latent else 0  # leading latent steps that are not stretches
        self.likelihood = get_likelihood(cfg.likelihood, scale=cfg.scale)
        self.params_per_bin = self.likelihood.params_per_channel
        self.condition = condition
        extra = condition.out_dim if condition is not None else 0
        widths = [cfg.hidden, *cfg.channels][::-1]  # deepest first
        self.stem = nn.Conv1d((1 + self.utterance_steps) * cfg.latent_dim + extra, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(ResBlock(w, cfg.kernel, cfg.block_norm) for w in widths[:-1])
        pairs = zip(widths, widths[1:], strict=False)
        self.up = nn.ModuleList(nn.ConvTranspose1d(a, b, 4, stride=2, padding=1) for a, b in pairs)
        self.conditions_up = nn.ModuleList(nn.Conv1d(extra, b, 1) for b in widths[1:]) if extra else None
        self.top_block = ResBlock(cfg.hidden, cfg.kernel, cfg.block_norm)
        self.out = nn.Conv1d(cfg.hidden, self.params_per_bin * n_mels, cfg.kernel, padding=cfg.kernel // 2)
        self.chunk_frames = 0
        self.context = receptive_context(cfg)

    def latents(self, z: Tensor) -> Tensor:
        """z as [B, T', D] (the engine passes [B, T', D]; a flat [B, T' * D] is reshaped)."""
        return z if z.dim() == 3 else z.reshape(z.shape[0], -1, self.latent_dim)

    def outputs(self, z: Tensor, mask: Tensor, c: Tensor | None = None) -> Tensor:
        """Likelihood parameters [B, params * n_mels, T] for z [B, T', D] and the frame mask [B, T]."""
        z = self.latents(z)
        utterance, z = z[:, : self.utterance_steps], z[:, self.utterance_steps:]
        frames = mask.shape[-1]
        steps = latent_steps(frames, self.reduction)
        if z.shape[1] < steps:
            raise ValueError(f"{frames} frames need {steps} latent steps; got {z.shape[1]}")
        z = z[:, :steps]
        return over_chunks(lambda zz, mm: self.params(zz, mm, c, utterance), z, mask, self.reduction,
                           self.chunk_frames, self.context, latent_input=True)

    def params(self, z: Tensor, mask: Tensor, c: Tensor | None, utterance: Tensor) -> Tensor:
        frames = mask.shape[-1]
        padded = latent_steps(frames, self.reduction) * self.reduction
        masks = pyramid(F.pad(mask, (0, padded - frames)), self.stages)[::-1]  # coarsest first
        if self.utterance_steps:  # the utterance latent beside every stretch's own
            z = torch.cat([z, utterance.expand(-1, z.shape[1], -1)], -1)
        h = z.transpose(1, 2) * masks[0]
        cond = self.condition(c)[:, :, None] if self.condition is not None else None
        if cond is not None:
            h = torch.cat([h, cond.expand(-1, -1, h.shape[-1]) * masks[0]], 1)
        h = F.silu(self.stem(h)) * masks[0]
        for level, (block, up) in enumerate(zip(self.blocks, self.up, strict=True), start=1):
            h = up(block(h, masks[level - 1]))
            if cond is not None:  # the condition again at every resolution: the speaker shapes the fine detail
                h = h + self.conditions_up[level - 1](cond)
            h = F.silu(h) * masks[level]
        h = self.top_block(h, masks[-1])
        return self.out(h)[..., :frames]

    def log_prob(self, x: dict, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(mel | z, c) per utterance: [B] nats, summed over the real frames only."""
        mask = mask_of(x)
        params = self.outputs(z, mask, c)
        mel = x["mel"] * mask[:, None, :]
        return self.likelihood.log_prob(params, mel, mask[:, None, :])

    def differentiable_mean(self, x: dict, z: Tensor, c: Tensor | None = None) -> dict:
        """E[mel | z, c] over x's frames, as a batch dict like x (with gradients: the engine's condition cycle)."""
        mask = mask_of(x)
        mel = self.likelihood.mean(self.outputs(z, mask, c))
        return {"mel": mel * mask[:, None, :], "mask": mask}

    @torch.no_grad()
    def generate(self, z: Tensor, c: Tensor | None = None, lengths: Tensor | None = None,
                 sample_mel: bool = False) -> dict:
        """{"mel": [B, n_mels, T] (the likelihood's mean unless sample_mel), "mask": [B, T]}.

        lengths [B] in frames (default: every latent step's frames, T = T' * 2**stages).
        """
        z = self.latents(z)
        if lengths is None:
            lengths = torch.full((z.shape[0],), (z.shape[1] - self.utterance_steps) * self.reduction, device=z.device)
        lengths = lengths.to(z.device).long()
        mask = frame_mask(lengths, int(lengths.max()))
        params = self.outputs(z, mask, c)
        mel = self.likelihood.sample(params) if sample_mel else self.likelihood.mean(params)
        return {"mel": mel * mask[:, None, :], "mask": mask}


def instance_normalize(mel: Tensor, mask: Tensor) -> Tensor:
    """Remove each utterance's per-bin mean and scale over its valid frames: [B, F, T] (padding stays zero)."""
    weight = mask[:, None, :]
    frames = weight.sum(-1, keepdim=True).clamp(min=1)
    mean = (mel * weight).sum(-1, keepdim=True) / frames
    var = ((mel - mean).pow(2) * weight).sum(-1, keepdim=True) / frames
    return (mel - mean) / (var + 1e-2).sqrt() * weight


def pad_to_multiple(mel: Tensor, mask: Tensor, multiple: int) -> tuple[Tensor, Tensor]:
    """Zero-pad [B, F, T] and [B, T] to a multiple of `multiple` frames."""
    extra = -mel.shape[-1] % multiple
    return F.pad(mel, (0, extra)), F.pad(mask, (0, extra))


def receptive_context(cfg: SpeechModelConfig) -> int:
    """Frames of context either side that fully determine an output: a bound, rounded up to whole latent steps."""
    half = cfg.kernel // 2
    frames = 3 * half + 2  # the per-frame stem, its block, the output layer
    for level in range(1, len(cfg.channels) + 1):
        frames += (2 * half + 3) * 2**level  # a stride-2 (or transposed) layer and a block at that resolution
    return latent_steps(2 * frames, cfg.reduction) * cfg.reduction


def over_chunks(fn, inputs: Tensor, mask: Tensor, reduction: int, chunk_frames: int, context: int,
                latent_input: bool = False):
    """fn over the whole sequence, or over chunks of chunk_frames (+ context either side) stitched together.

    Encoder: inputs are frames [B, F, T], fn returns (mean, logvar, valid) per latent step.
    Decoder (latent_input): inputs are latents [B, T', D], fn returns parameters per frame [B, P, T].
    Chunks start on latent-step boundaries and the context covers the receptive field, so the stitched
    result equals the whole one.
    """
    frames = mask.shape[-1]
    if chunk_frames <= 0 or frames <= chunk_frames + 2 * context:
        return fn(inputs, mask)
    chunk = max(reduction, chunk_frames // reduction * reduction)
    pieces = []
    for start in range(0, frames, chunk):
        end = min(frames, start + chunk)
        lo, hi = max(0, start - context), min(frames, end + context)
        if latent_input:
            out = fn(inputs[:, lo // reduction: latent_steps(hi, reduction)], mask[:, lo:hi])
            pieces.append(out[..., start - lo: end - lo])
        else:
            out = fn(inputs[..., lo:hi], mask[:, lo:hi])
            a, b = (start - lo) // reduction, (start - lo) // reduction + latent_steps(end - start, reduction)
            pieces.append(tuple(t[:, a:b] for t in out))
    if latent_input:
        return torch.cat(pieces, -1)
    return tuple(torch.cat(parts, 1) for parts in zip(*pieces, strict=True))


def build_speech_vae(cfg: SpeechModelConfig, info: dict) -> VAE:
    """The VAE (a CVAE when the data conditions on label and/or speaker) from the model config and data info."""
    n_mels = info["n_mels"]
    counts = [len(cond["classes"]) for cond in info.get("conditions", [])]

    def embedding() -> ConditionEmbedding | None:
        return ConditionEmbedding(counts, cfg.condition_dim) if counts else None

    prior = None
    if counts and cfg.prior == "learned":
        prior = LearnedConditionalPrior(cfg.latent_dim, embedding())
    encoder = MelEncoder(n_mels, cfg, embedding())
    decoder = MelDecoder(n_mels, cfg, embedding())
    chunk = math.ceil(cfg.chunk_seconds * info["sample_rate"] / info["data"]["hop_length"])
    encoder.chunk_frames = decoder.chunk_frames = chunk
    return VAE(encoder, decoder, cfg.latent_dim, prior=prior, latent_shape=(None, cfg.latent_dim))
