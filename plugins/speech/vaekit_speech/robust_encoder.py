"""A noise-robust encoder: the speech VAE's encoder trained on noisy -> clean pairs mixed on the fly.

    vaekit train-enhancer runs/fsdd --steps 600       # writes runs/fsdd/enhancer/encoder.safetensors
    vaekit enhance runs/fsdd noisy.wav --method vae_nmf_robust

Each step mixes the training split's clean recordings with white, pink or babble noise (babble of other training
speakers) at an SNR drawn uniformly from [snr_low, snr_high] dB, brings the mixture to the training level, and
minimises the clean log-mel's negative ELBO with the posterior taken from the noisy log-mel: -log p(clean | z) +
KL(q(z | noisy) || N(0, I)), z ~ q(z | noisy) (Adam, clipped gradients, cosine decay). The decoder stays the
clean-speech model's (frozen); only a copy of the encoder learns. enhancement.vae_nmf then takes this encoder's
posterior mean (enhancement.robust_settings).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

from vaekit.plugin_api import VAE, atomic_write_bytes, atomic_write_text, build_dataclass, run_dir_of

from .audio import loudness_gain
from .data import pad_mels, split_utterances, utterance_wave
from .data_config import SpeechDataConfig, frontend_from
from .features import MelStats
from .noise import mix_at_snr, pink_noise, white_noise
from .sources import list_folder, list_fsdd

ENHANCER_FOLDER = "enhancer"
TRAINING_NOISES = ("white", "pink", "babble")


@dataclass
class RobustEncoderConfig:
    """How the noise-robust encoder is trained (saved beside its weights)."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3  # Adam's, decayed to 0 over the steps by a cosine
    # A fully trained decoder's likelihood is sharp: a batch it cannot explain gives gradient norms in the thousands,
    # enough to throw the encoder off; gradients are clipped to this norm (Adam's steps keep their size).
    clip_norm: float = 20.0
    snr_low: float = -5.0  # dB
    snr_high: float = 20.0  # dB
    seed: int = 0


def clean_training_waves(info: dict) -> list[tuple[str | None, torch.Tensor]]:
    """(speaker, processed wave) of every recording of the model's training split, as the training data reads it."""
    cfg = build_dataclass(SpeechDataConfig, info["data"], "data")
    listers = {"fsdd": list_fsdd, "folder": list_folder}
    if cfg.source not in listers:
        raise ValueError(f"train-enhancer: needs a model trained on recordings (data.source fsdd or folder), "
                         f"got {cfg.source!r}")
    train = split_utterances(cfg, listers[cfg.source](cfg), info.get("seed", 0))[0]
    return [(u.speaker, utterance_wave(u, info["data"])) for u in train]


def babble_by_speaker(waves: list[tuple[str | None, torch.Tensor]], seconds: float, rate: int,
                      rng: np.random.Generator) -> dict:
    """speaker -> a babble stream `seconds` long of the other speakers' recordings (None: all recordings)."""
    speakers = sorted({s for s, _ in waves if s is not None}) or [None]
    streams = {}
    for speaker in speakers:
        others = [w for s, w in waves if s != speaker or speaker is None]
        total = torch.zeros(int(seconds * rate))
        for _ in range(6):
            order = rng.permutation(len(others))
            stream = torch.cat([others[i] for i in order])
            total += torch.cat([stream] * (1 + total.numel() // stream.numel()))[: total.numel()]
        streams[speaker] = total / total.std()
    return streams


def noisy_batch(model: VAE, items: list[tuple[str | None, torch.Tensor]], babble: dict, config: RobustEncoderConfig,
                rng: np.random.Generator) -> tuple[dict, dict]:
    """(noisy, clean) batches {"mel", "mask"} of normalised log-mels, frame for frame."""
    info = model.config["info"]
    frontend, stats = frontend_from(info["data"]), MelStats.from_info(info)
    noisy_mels, clean_mels = [], []
    for speaker, clean in items:
        kind = TRAINING_NOISES[int(rng.integers(len(TRAINING_NOISES)))]
        if kind == "white":
            noise = white_noise(clean.numel(), rng)
        elif kind == "pink":
            noise = pink_noise(clean.numel(), rng)
        else:
            stream = babble[speaker if speaker in babble else next(iter(babble))]
            start = int(rng.integers(stream.numel() - clean.numel()))
            noise = stream[start:start + clean.numel()]
        noisy = mix_at_snr(clean, noise, float(rng.uniform(config.snr_low, config.snr_high)))
        noisy = noisy * loudness_gain(noisy, "rms", info["data"].get("target_db", -20.0))
        noisy_mels.append(stats.normalize(frontend.log_mel(noisy)))
        clean_mels.append(stats.normalize(frontend.log_mel(clean)))
    return pad_mels(noisy_mels), pad_mels(clean_mels)


def train_robust_encoder(model: VAE, config: RobustEncoderConfig, progress=None) -> nn.Module:
    """A copy of model.encoder trained as the module docstring says; the model itself is left unchanged."""
    waves = clean_training_waves(model.config["info"])
    rng = np.random.default_rng(config.seed)
    longest = max(w.numel() for _, w in waves)
    babble = babble_by_speaker(waves, max(30.0, 4 * longest / model.config["info"]["sample_rate"]),
                               model.config["info"]["sample_rate"], rng)
    encoder = copy.deepcopy(model.encoder).train()
    decoder = model.decoder.eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, config.steps))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(config.seed)
        for step in range(config.steps):
            items = [waves[i] for i in rng.integers(len(waves), size=config.batch_size)]
            noisy, clean = noisy_batch(model, items, babble, config, rng)
            q = encoder(noisy)
            z = q.rsample()
            frames = clean["mask"].sum()
            loss = (-decoder.log_prob(clean, z).sum() + q.kl().sum()) / frames
            optimizer.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(encoder.parameters(), config.clip_norm)
            optimizer.step()
            schedule.step()
            if progress and (step % 50 == 0 or step == config.steps - 1):
                progress(f"step {step}: {float(loss.detach()):.3f} nats per frame, gradient norm {float(norm):.1f}")
    for p in decoder.parameters():
        p.requires_grad_(True)
    return encoder.eval()


def enhancer_dir(model: VAE) -> Path:
    run = run_dir_of(model)
    if run is None:
        raise ValueError("enhance: this model has no run folder to keep a noise-robust encoder in")
    return Path(run) / ENHANCER_FOLDER


def save_robust_encoder(model: VAE, encoder: nn.Module, config: RobustEncoderConfig) -> list[Path]:
    """RUN/enhancer/encoder.safetensors and training.json."""
    folder = enhancer_dir(model)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    atomic_write_bytes(folder / "encoder.safetensors", save(weights))
    atomic_write_text(folder / "training.json", json.dumps(asdict(config), indent=2) + "\n")
    return [folder / "encoder.safetensors", folder / "training.json"]


def load_robust_encoder(model: VAE) -> nn.Module:
    """The run's noise-robust encoder (train-enhancer); a one-line error when it has none."""
    path = enhancer_dir(model) / "encoder.safetensors"
    if not path.is_file():
        raise ValueError(f"{path}: no noise-robust encoder; train one with `vaekit train-enhancer "
                         f"{run_dir_of(model)}` or use --method vae_nmf")
    encoder = copy.deepcopy(model.encoder)
    encoder.load_state_dict(load_file(str(path), device=str(model.device)))
    return encoder.eval()
