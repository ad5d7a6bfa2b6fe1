"""Which stage moves the pitch: median f0 (Hz) of each input, of its STFT magnitude through Griffin-Lim, of its
log-mel through InverseMelScale + Griffin-Lim (at the model's or the given settings), and of a model's
reconstruction or conversion.

    python -m vaekit_speech.pitch_report a.wav b.wav --sample-rate 16000 --n-mels 80 128 --top-db 80 120
    python -m vaekit_speech.pitch_report 3_george_2.wav --run runs/fsdd_cvae --condition speaker=jackson \\
        --conversion moments

Each column after the input's is "f0 Hz / shift in cents against the input / share of the input's voiced
frames voiced there" (YIN, vaekit_speech.pitch, at its threshold for Griffin-Lim audio).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
import torchaudio

from .audio import load_audio
from .features import MelFrontend
from .pitch import ROUGH_THRESHOLD, pitch_shift_cents, pitch_track


def median_f0(wave: torch.Tensor, rate: int) -> float:
    """Median f0 in Hz over the frames voiced at the Griffin-Lim threshold (NaN when none)."""
    track = pitch_track(wave, rate, threshold=ROUGH_THRESHOLD)
    voiced = track[~track.isnan()]
    return float(voiced.median()) if voiced.numel() else float("nan")


def linear_griffin_lim(wave: torch.Tensor, n_fft: int, hop: int, iters: int) -> torch.Tensor:
    """The wave's own STFT magnitude back to audio with the frontend's Griffin-Lim settings (no mel scale)."""
    window = torch.hann_window(n_fft)
    power = torch.stft(wave, n_fft, hop, window=window, return_complex=True).abs().pow(2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torchaudio.functional.griffinlim(power, window, n_fft, hop, n_fft, 2.0, iters, 0.99, wave.numel(),
                                                True)


def column(reference: torch.Tensor, wave: torch.Tensor, rate: int) -> str:
    shift, _, kept = pitch_shift_cents(reference, wave, rate, ROUGH_THRESHOLD)
    return f"{median_f0(wave, rate):.0f}/{shift:+.0f}c/{kept:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaekit_speech.pitch_report", description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="audio files")
    parser.add_argument("--sample-rate", type=int, default=None, help="Hz (default: the run's, else 16000)")
    parser.add_argument("--n-mels", type=int, nargs="+", default=None, help="mel resolutions to try (default: "
                        "the run's, else 80)")
    parser.add_argument("--top-db", type=float, nargs="+", default=[80.0], help="log-mel floors to try (dB)")
    parser.add_argument("--run", default=None, help="also the model's reconstruction (vaekit reconstruct)")
    parser.add_argument("--source", default=None, help="reconstruct --source")
    parser.add_argument("--condition", default=None, help="reconstruct --condition (a conversion)")
    parser.add_argument("--conversion", default=None, help="reconstruct --conversion")
    args = parser.parse_args(argv)
    data = {}
    if args.run:
        from vaekit.plugin_api import load

        model, _ = load(args.run)
        data = model.config["info"]["data"]
    rate = args.sample_rate or data.get("sample_rate", 16000)
    n_fft = data.get("n_fft") or 2 ** round(math.log2(0.064 * rate))
    hop = data.get("hop_length") or n_fft // 4
    mels = args.n_mels or [data.get("n_mels", 80)]
    header = ["file", "input Hz", "STFT->GL"] + [f"mel{n}/floor{t:g}->GL" for n in mels for t in args.top_db]
    recon = {}
    if args.run:
        header.append("model")
        recon = model_outputs(args, model)
    print("\t".join(header))
    for path in args.inputs:
        wave = load_audio(path, rate, None, "rms")
        row = [Path(path).name, f"{median_f0(wave, rate):.0f}", column(wave, linear_griffin_lim(wave, n_fft, hop, 64),
                                                                        rate)]
        for n in mels:
            for top_db in args.top_db:
                frontend = MelFrontend(sample_rate=rate, n_fft=n_fft, hop_length=hop, n_mels=n, top_db=top_db)
                row.append(column(wave, frontend.to_audio(frontend.log_mel(wave), samples=wave.numel()), rate))
        if args.run:
            row.append(column(wave, recon[path], rate))
        print("\t".join(row), flush=True)
    return 0


def model_outputs(args, model) -> dict[str, torch.Tensor]:
    """{input path: the model's reconstruction or conversion as a waveform at the model's rate}."""
    import soundfile as sf

    from .plugin import SpeechPlugin

    plugin = SpeechPlugin()
    condition = plugin.parse_condition(args.condition, model) if args.condition else None
    with tempfile.TemporaryDirectory() as out:
        written = plugin.reconstruct(model, args.inputs, condition, Path(out), source=args.source,
                                     conversion=args.conversion)
        waves = {}
        for path in args.inputs:
            stem = Path(path).stem
            found = next(p for p in written if p.suffix == ".wav" and p.stem.startswith(stem + "_")
                         and not p.stem.endswith("_input"))
            waves[path] = torch.from_numpy(sf.read(str(found), dtype="float32")[0])
    return waves


if __name__ == "__main__":
    sys.exit(main())
