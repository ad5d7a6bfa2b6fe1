"""The speech plugin's verbs `vaekit enhance` and `vaekit train-enhancer`.

    vaekit enhance runs/fsdd noisy.wav other.flac -o cleaned/     # cleaned/noisy.wav, cleaned/noisy.png, ...
    vaekit train-enhancer runs/fsdd --steps 600                   # the noise-robust encoder, for vae_nmf_robust

Each output is as long as its input and at its rate and level; a stereo file is enhanced as the average of its
channels (a mono file out). The PNG shows the input's and the output's log-mel side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import Tensor

from vaekit.plugin_api import VAE, at_least

from .audio import SILENCE_DBFS, read_audio, resample, to_mono, write_audio
from .data_config import frontend_from
from .enhancement import VAENMFConfig, robust_settings, spectral_gating, vae_nmf, wiener
from .features import save_mel_png
from .robust_encoder import (
    RobustEncoderConfig,
    enhancer_dir,
    load_robust_encoder,
    save_robust_encoder,
    train_robust_encoder,
)

METHODS = ("auto", "vae_nmf", "vae_nmf_robust", "wiener", "spectral_gating")


def enhance_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", help="noisy recordings (WAV, FLAC, OGG; any rate, mono or stereo)")
    parser.add_argument("-o", "--out-dir", type=Path, default=None,
                        help="output folder (default: RUN/outputs/enhance); each output keeps its input's name")
    parser.add_argument("--method", choices=METHODS, default="auto",
                        help="vae_nmf: the speech VAE with an NMF noise model fitted per recording; vae_nmf_robust: "
                             "the gain set by the noise-robust encoder's clean speech (train-enhancer); wiener, "
                             "spectral_gating: the baselines (default auto: vae_nmf_robust when the run has a "
                             "noise-robust encoder, else vae_nmf)")
    parser.add_argument("--iterations", type=at_least(1), default=VAENMFConfig.iterations,
                        help=f"vae_nmf: updates of the fit per recording (default {VAENMFConfig.iterations})")


def run_enhance(model: VAE, plugin, args) -> list[Path]:
    """Enhance noisy recordings with the speech VAE as the clean-speech model (outputs as long, same rate)."""
    if model.device.type != "cpu":  # the fit is small per-recording work on CPU tensors (1.3 s per 30 s)
        print(f"vaekit: note: enhance runs on the CPU (--device {args.device} left unused)", file=sys.stderr)
        model = model.cpu()
    model.eval()
    out_dir = args.out_dir or Path(args.run) / "outputs" / "enhance"
    enhance = enhancer_for(model, args.method, VAENMFConfig(iterations=args.iterations, seed=args.seed))
    inputs = [Path(p) for p in args.inputs]
    targets = [out_dir / f"{p.stem}.wav" for p in inputs]
    for path, target in zip(inputs, targets, strict=True):
        if target.resolve() == path.resolve():
            raise ValueError(f"{path}: the output would overwrite the input; give another folder with -o")
    if len(set(targets)) < len(targets):
        raise ValueError("enhance: two inputs have the same file name; enhance them into separate folders (-o)")
    written = []
    for path, target in zip(inputs, targets, strict=True):
        written += enhance_file(model, enhance, path, target)
    return written


def enhancer_for(model: VAE, method: str, config: VAENMFConfig):
    """f(wave at the model's rate) -> enhanced wave for a --method."""
    rate = model.config["info"]["sample_rate"]
    if method == "auto":
        has_robust = _run_has_robust_encoder(model)
        method = "vae_nmf_robust" if has_robust else "vae_nmf"
    if method == "vae_nmf_robust":
        encoder = load_robust_encoder(model)
        settings = robust_settings(config)
        return lambda w: vae_nmf(model, w, settings, encoder=encoder)
    if method == "vae_nmf":
        return lambda w: vae_nmf(model, w, config)
    if method == "wiener":
        return lambda w: wiener(w, rate)
    return lambda w: spectral_gating(w, rate)


def _run_has_robust_encoder(model: VAE) -> bool:
    try:
        return (enhancer_dir(model) / "encoder.safetensors").is_file()
    except ValueError:  # a model without a run folder
        return False


def enhance_file(model: VAE, enhance, path: Path, target: Path) -> list[Path]:
    """target (WAV at the input's rate, as long) and target.png (log-mels of input and output)."""
    info = model.config["info"]
    samples, rate = read_audio(path)
    if samples.shape[1] > 1:
        print(f"vaekit: note: {path}: {samples.shape[1]} channels; enhancing their average (mono out)",
              file=sys.stderr)
    wave = to_mono(samples).float()
    peak = float(wave.abs().max())
    if peak < 10 ** (SILENCE_DBFS / 20):
        raise ValueError(f"{path}: silent (peak below {SILENCE_DBFS:.0f} dBFS); there is no speech to enhance")
    at_model = resample(wave, rate, info["sample_rate"])
    frontend = frontend_from(info["data"])
    if at_model.numel() < frontend.min_samples():
        raise ValueError(f"{path}: too short ({wave.numel()} samples at {rate} Hz); expected at least "
                         f"{frontend.min_samples() / info['sample_rate'] * 1000:.0f} ms")
    enhanced = enhance(at_model)
    out = fit_length(resample(enhanced, info["sample_rate"], rate), wave.numel())
    target.parent.mkdir(parents=True, exist_ok=True)
    written = [write_audio(target, out, rate)]
    mels = [frontend.log_mel(at_model), frontend.log_mel(enhanced)]
    written.append(save_mel_png(target.with_suffix(".png"), mels, [f"{path.name} (in)", "enhanced"],
                                frontend.hop_length / frontend.sample_rate))
    return written


def fit_length(wave: Tensor, samples: int) -> Tensor:
    """wave cut or zero-padded to exactly `samples` samples (resampling there and back can be one off)."""
    return torch.nn.functional.pad(wave[:samples], (0, max(0, samples - wave.numel())))


def train_enhancer_arguments(parser) -> None:
    parser.add_argument("--steps", type=at_least(1), default=RobustEncoderConfig.steps,
                        help=f"training steps (default {RobustEncoderConfig.steps})")
    parser.add_argument("--batch-size", dest="batch_size", type=at_least(1), default=RobustEncoderConfig.batch_size,
                        help=f"recordings per step (default {RobustEncoderConfig.batch_size})")
    parser.add_argument("--snr-low", dest="snr_low", type=float, default=RobustEncoderConfig.snr_low,
                        help=f"lowest training SNR in dB (default {RobustEncoderConfig.snr_low:g})")
    parser.add_argument("--snr-high", dest="snr_high", type=float, default=RobustEncoderConfig.snr_high,
                        help=f"highest training SNR in dB (default {RobustEncoderConfig.snr_high:g})")


def run_train_enhancer(model: VAE, plugin, args) -> list[Path]:
    """Train a noise-robust encoder on noisy -> clean pairs mixed on the fly (RUN/enhancer/)."""
    if not args.snr_low <= args.snr_high:
        raise ValueError(f"--snr-low {args.snr_low:g} is above --snr-high {args.snr_high:g}; expected low <= high")
    config = RobustEncoderConfig(steps=args.steps, batch_size=args.batch_size, snr_low=args.snr_low,
                                 snr_high=args.snr_high, seed=args.seed)
    encoder = train_robust_encoder(model, config, progress=lambda line: print(line, file=sys.stderr, flush=True))
    return save_robust_encoder(model, encoder, config)
