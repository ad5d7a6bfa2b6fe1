"""Speech enhancement on FSDD: the speech VAE with an NMF noise model against spectral gating and a Wiener filter.

Test recordings (FSDD's test split, every k-th of its sorted names so digits and speakers are spread) are mixed
with white and babble noise (babble: six talkers from training recordings of the other speakers) at 0, 5 and
10 dB SNR (vaekit_speech.noise, seeded), and each enhancer runs on the same mixtures (vaekit_speech.enhance_eval):
no enhancement, spectral gating (noisereduce), a Wiener filter with the noise from the first 100 ms, vae_nmf (the
VAE unsupervised, Leglaive/Bando style) and vae_nmf_robust (the gain set by an encoder trained on noisy -> clean
pairs, `vaekit train-enhancer`). Scores: narrow-band PESQ, STOI (of the clips joined: a digit is shorter
than STOI's 384 ms minimum), SI-SDR (dB), and the eval's digit classifier's accuracy (%) on each output; plus the
PESQ of clean recordings passed through each VAE enhancer, and the process CPU time to enhance a 30 s recording.
The same scores on the test digit strings of recipes/speech/fsdd_strings.yaml (2-8 s, enhanced whole, each word
classified at its known samples) go to speech_enhancement_strings.json.

    python benchmarks/speech_enhancement.py --run runs/fsdd --clips 100 --strings 30   # a trained fsdd.yaml run
    python benchmarks/speech_enhancement.py --steps 2300                               # trains fsdd.yaml here first
    python benchmarks/speech_enhancement.py --smoke                                    # seconds: checks the script

Result files: speech_enhancement.json (+ _strings, _newcomer). Targets: the VAE enhancers above spectral gating and
Wiener on every metric at every SNR, digit accuracy recovering at least half of what noise costs at 0 dB, a 30 s
recording in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import (
    QUIET,
    add_common_flags,
    budget,
    data_dir,
    load_recipe,
    load_trained,
    log,
    train_and_load,
    work_folder,
    write_result,
)

VAE_METHODS = ("vae_nmf", "vae_nmf_robust")
BASELINES = ("spectral_gating", "wiener")
METRICS = ("pesq", "stoi", "si_sdr")


def trained_model(args):
    """(model, run folder): --run, else recipes/speech/fsdd.yaml trained for --steps in the work folder."""
    if args.run is not None:
        model, _, _, steps = load_trained(args.run, "cpu")
        checkpoint = Path(model.config["assets_dir"]).parent.name  # step-N: the weights loaded
        return model, args.run, int(checkpoint.removeprefix("step-")) if checkpoint.startswith("step-") else steps
    overrides = [*QUIET, *budget(args.steps), "trainer.threads=1", f"trainer.checkpoint_every={args.steps}",
                 "model.channels=[256]"]
    if args.smoke:
        overrides += ["subset.train=64", "subset.val=8", "subset.test=8", "trainer.batch_size=8"]
    run = args.work_dir / "fsdd"
    model, _, _, steps = train_and_load(load_recipe("recipes/speech/fsdd.yaml", overrides), run, "cpu")
    return model, run, steps


def rounded(figures):
    """Every float in a nested dict rounded to 3 decimals (PESQ, STOI and dB figures carry no more)."""
    if isinstance(figures, dict):
        return {k: rounded(v) for k, v in figures.items()}
    return round(figures, 3) if isinstance(figures, float) else figures


def targets(scores: dict, kinds: list[str], snrs: list[float]) -> dict:
    """Which targets each VAE method meets: above both baselines on every metric and SNR (and the comparisons it
    loses), half the digit accuracy lost at 0 dB recovered."""
    met = {}
    for method in [m for m in VAE_METHODS if m in scores[f"{kinds[0]}_{snrs[0]:g}dB"]]:
        below = [f"{k}_{s:g}dB {m} <= {b}" for k in kinds for s in snrs for m in METRICS for b in BASELINES
                 if scores[f"{k}_{s:g}dB"][method][m] <= scores[f"{k}_{s:g}dB"][b][m]]
        met[f"{method}_above_baselines"] = not below
        met[f"{method}_comparisons_lost"] = len(below)  # of kinds x SNRs x metrics x baselines
        met[f"{method}_lost"] = below
        if "clean" in scores and 0.0 in snrs:
            recovered = []
            for k in kinds:
                row = scores[f"{k}_0dB"]
                lost = scores["clean"]["digit_acc"] - row["noisy"]["digit_acc"]
                recovered.append(100 * (row[method]["digit_acc"] - row["noisy"]["digit_acc"]) / lost
                                 if lost > 0 else 100.0)
                met[f"{method}_{k}_0dB_digit_recovered_pct"] = recovered[-1]
            met[f"{method}_digit_half_recovered"] = all(r >= 50 for r in recovered)
    return met


def robust_training_steps(model) -> int:
    """The steps the run's noise-robust encoder trained (its training.json)."""
    from vaekit_speech.robust_encoder import enhancer_dir

    return int(json.loads((enhancer_dir(model) / "training.json").read_text())["steps"])


def speed(model, enhance, seconds: float) -> float:
    """Process CPU seconds to enhance `seconds` of noisy speech (test recordings joined, white noise at 5 dB)."""
    from vaekit_speech.audio import load_audio
    from vaekit_speech.enhance_eval import fsdd_clips
    from vaekit_speech.noise import noisy_version

    rate = model.config["info"]["sample_rate"]
    clips = fsdd_clips(data_dir() / "fsdd" / "recordings", "test", 300)
    waves, total = [], 0
    for path in clips:
        waves.append(load_audio(path, rate))
        total += waves[-1].numel()
        if total >= seconds * rate:
            break
    clean = torch.cat(waves)[: int(seconds * rate)]
    noisy = noisy_version(clean, rate, "white", 5.0, seed=0)
    started = time.process_time()
    enhance(noisy)
    return time.process_time() - started


def clean_through(model, enhance, clips: list[Path]) -> dict:
    """PESQ and SI-SDR of clean recordings against themselves after the enhancer: what it costs speech with no
    noise (PESQ of a clip against itself is the scale's top, about 4.5)."""
    from vaekit_speech.audio import load_audio
    from vaekit_speech.enhance_eval import PESQ_NO_SPEECH, pesq_or_none
    from vaekit_speech.quality import si_sdr

    rate = model.config["info"]["sample_rate"]
    rows = []
    for path in clips:
        clean = load_audio(path, rate)
        if pesq_or_none(clean, clean, rate) is None:
            continue
        out = enhance(clean)
        pesq_out = pesq_or_none(clean, out, rate)
        rows.append({"pesq_in": pesq_or_none(clean, clean, rate),
                     "pesq_out": PESQ_NO_SPEECH if pesq_out is None else pesq_out, "si_sdr_out": si_sdr(clean, out)})
    return {k: statistics.mean(r[k] for r in rows) for k in rows[0]}


def main() -> None:
    from vaekit_speech.enhance_eval import (
        clip_recordings,
        enhancement_scores,
        enhancers,
        fsdd_clips,
        string_recordings,
    )
    from vaekit_speech.enhancement import VAENMFConfig
    from vaekit_speech.metrics import get_classifiers
    from vaekit_speech.robust_encoder import (
        RobustEncoderConfig,
        enhancer_dir,
        load_robust_encoder,
        save_robust_encoder,
        train_robust_encoder,
    )

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None, help="a trained recipes/speech/fsdd.yaml run (default: train)")
    p.add_argument("--steps", type=int, default=2300, help="training steps of fsdd.yaml when --run is not given")
    p.add_argument("--robust-steps", type=int, default=600,
                   help="steps of the noise-robust encoder when the run has none (0: leave vae_nmf_robust out)")
    p.add_argument("--clips", type=int, default=100, help="test recordings per noise and SNR")
    p.add_argument("--strings", type=int, default=30, help="test digit strings per noise and SNR")
    p.add_argument("--snrs", default="0,5,10", help="SNRs in dB")
    p.add_argument("--noises", default="white,babble")
    p.add_argument("--iterations", type=int, default=VAENMFConfig.iterations, help="vae_nmf updates per recording")
    p.add_argument("--classifier-epochs", type=int, default=8, help="the digit classifier's (as vaekit eval's)")
    p.add_argument("--speed-seconds", type=float, default=30.0, help="length of the timed recording")
    p.add_argument("--parts", default="scores,strings,newcomer",
                   help="scores: the test mixtures (speech_enhancement.json); strings: the test digit strings "
                        "(speech_enhancement_strings.json); newcomer: a held-out digit string in an unseen noise end "
                        "to end (speech_enhancement_newcomer.json)")
    args = add_common_flags(p).parse_args()
    if args.smoke:
        args.steps, args.robust_steps, args.clips, args.strings, args.snrs = 3, 2, 2, 1, "0"
        args.classifier_epochs, args.speed_seconds, args.iterations = 1, 2.0, 4
    torch.set_num_threads(1)
    kinds, snrs = args.noises.split(","), [float(s) for s in args.snrs.split(",")]
    root = data_dir() / "fsdd" / "recordings"
    with work_folder(args):
        model, run, steps = trained_model(args)
        model.eval()
        robust = None
        if args.robust_steps > 0:
            if not (enhancer_dir(model) / "encoder.safetensors").is_file():
                log(f"training the noise-robust encoder for {args.robust_steps} steps")
                config = RobustEncoderConfig(steps=args.robust_steps, batch_size=8 if args.smoke else 32)
                save_robust_encoder(model, train_robust_encoder(model, config, progress=log), config)
            robust = load_robust_encoder(model)
        robust_steps = robust_training_steps(model) if robust is not None else 0
        config = VAENMFConfig(iterations=args.iterations)
        methods = enhancers(model, config, robust)
        cache = Path(run) / "speech_classifiers"
        classifier = get_classifiers(model, args.classifier_epochs, cache)["label"].eval()
        babble = fsdd_clips(root, "train", 10_000)
        if "scores" in args.parts:
            clips = fsdd_clips(root, "test", args.clips)
            recordings = clip_recordings(clips, model.config["info"]["sample_rate"])
            scores = enhancement_scores(model, recordings, babble, kinds, snrs, classifier, methods, progress=log)
            figures = {"scores": scores, "targets": targets(scores, kinds, snrs),
                       **{f"clean_through_{name}": clean_through(model, methods[name], clips[: max(2, args.clips // 3)])
                          for name in VAE_METHODS if name in methods},
                       "speed_cpu_seconds": {name: speed(model, methods[name], args.speed_seconds)
                                             for name in ("vae_nmf", *(["vae_nmf_robust"] if robust else []))},
                       "speed_recording_seconds": args.speed_seconds, "vae_steps": steps,
                       "robust_steps": robust_steps}
            log(json.dumps(figures["targets"]))
            figures = rounded(figures)
            write_result(args, "speech_enhancement", "FSDD test digits in white and babble noise: PESQ, STOI, "
                         "SI-SDR and digit accuracy of the VAE enhancers against spectral gating and Wiener",
                         figures, device="cpu, one thread",
                         headline=["scores_white_0dB_vae_nmf_pesq", "scores_babble_0dB_vae_nmf_pesq",
                                   "scores_white_0dB_vae_nmf_robust_pesq", "scores_babble_0dB_vae_nmf_robust_pesq"],
                         notes=f"{scores['clips_scored']} FSDD test recordings per noise and SNR (of {len(clips)}: "
                               f"PESQ cannot score one under 0.25 s); fsdd.yaml trained {steps} steps "
                               f"(model.channels=[256]), its noise-robust encoder {robust_steps}; STOI of the clips "
                               f"joined; speed: process CPU seconds for a {args.speed_seconds:g} s recording on a "
                               f"shared 2-core machine")
            print(json.dumps(figures["targets"]))
        if "strings" in args.parts:
            strings = string_recordings(model, args.strings)
            scores = enhancement_scores(model, strings, babble, kinds, snrs, classifier, methods, progress=log)
            figures = rounded({"scores": scores, "targets": targets(scores, kinds, snrs), "vae_steps": steps,
                               "robust_steps": robust_steps})
            log(json.dumps(figures["targets"]))
            write_result(args, "speech_enhancement_strings", "FSDD test digit strings (fsdd_strings') in white and "
                         "babble noise: PESQ, STOI, SI-SDR and per-word digit accuracy of the VAE enhancers against "
                         "spectral gating and Wiener", figures, device="cpu, one thread",
                         headline=["scores_white_0dB_vae_nmf_robust_pesq", "scores_babble_0dB_vae_nmf_robust_pesq",
                                   "scores_white_0dB_vae_nmf_robust_digit_acc",
                                   "scores_babble_0dB_vae_nmf_robust_digit_acc"],
                         notes=f"the first {scores['clips_scored']} test strings of recipes/speech/fsdd_strings.yaml "
                               f"(3-8 test recordings of one speaker joined with pauses, 2-8 s; "
                               f"{scores['words_scored']} words), each enhanced whole by the fsdd.yaml model of "
                               f"speech_enhancement.json ({steps} steps) and its noise-robust encoder "
                               f"({robust_steps} steps); digit accuracy per word cut at its known samples; STOI of "
                               f"the strings joined")
        if "newcomer" in args.parts:
            found = rounded(newcomer(model, args.work_dir / "newcomer", robust is not None, config))
            log(json.dumps(found))
            write_result(args, "speech_enhancement_newcomer", "A held-out speaker's digit string in a noise no "
                         "enhancer saw, through `vaekit enhance`'s own code path", found,
                         device="cpu, one thread",
                         headline=["0dB_vae_nmf_robust_pesq", "0dB_wiener_pesq", "5dB_vae_nmf_robust_pesq"],
                         notes="yweweler's test recordings 4 0 7 2 9 1 5 8 joined with 0.25 s pauses (5 s), mixed with "
                               "a synthetic machine-room noise (brown noise, mains hum, slow modulation) read from a "
                               "noise folder; the same mixture also as a 16 kHz stereo file")


def machine_room_noise(seconds: float, rate: int) -> np.ndarray:
    """Brown noise, mains-hum harmonics and a slow 0.3 Hz swell: a noise unlike any the enhancers trained on."""
    rng = np.random.default_rng(5)
    n = int(seconds * rate)
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # keep it from drifting: no DC, no 1 Hz wander
    t = np.arange(n) / rate
    hum = sum(np.sin(2 * np.pi * f * t + k) / (k + 1) for k, f in enumerate([100, 200, 300, 450]))
    noise = (brown / brown.std() + 0.7 * hum / hum.std()) * (1 + 0.3 * np.sin(2 * np.pi * 0.3 * t))
    return 0.1 * noise / np.abs(noise).max()


def level_db(wave: torch.Tensor) -> float:
    """RMS level in dBFS."""
    return 20 * math.log10(float(wave.double().pow(2).mean().sqrt()))


def newcomer(model, folder: Path, with_robust: bool, config) -> dict:
    """Enhance a held-out digit string in machine-room noise at 0 and 5 dB with enhance_cli's enhance_file (files
    in, files out): PESQ, STOI, SI-SDR of each method, the output's duration, rate and level, and the same for the
    mixture as 16 kHz stereo and for the clean string itself."""
    import soundfile as sf
    from vaekit_speech.audio import load_audio, resample
    from vaekit_speech.enhance_cli import enhance_file, enhancer_for
    from vaekit_speech.noise import make_noise, mix_at_snr
    from vaekit_speech.quality import pesq_nb, si_sdr, stoi

    rate = model.config["info"]["sample_rate"]
    (folder / "noises").mkdir(parents=True, exist_ok=True)
    sf.write(folder / "noises" / "machine_room.wav", machine_room_noise(20.0, rate), rate)
    recordings = data_dir() / "fsdd" / "recordings"
    pause = torch.zeros(int(0.25 * rate))
    clean = torch.cat([torch.cat([load_audio(recordings / f"{d}_yweweler_{i}.wav", rate), pause])
                       for d, i in [(4, 0), (0, 1), (7, 2), (2, 3), (9, 4), (1, 0), (5, 1), (8, 2)]])
    methods = ["noisy", "spectral_gating", "wiener", "vae_nmf", *(["vae_nmf_robust"] if with_robust else [])]
    found = {}
    for snr in (0.0, 5.0):
        noisy = mix_at_snr(clean, make_noise(str(folder / "noises"), clean.numel(), rate, seed=1), snr)
        sf.write(folder / f"newcomer_{snr:g}dB.wav", noisy.numpy(), rate)
        for method in methods:
            if method == "noisy":
                out = noisy
            else:
                target = folder / method / f"newcomer_{snr:g}dB.wav"
                enhance_file(model, enhancer_for(model, method, config), folder / target.name, target)
                data, out_rate = sf.read(target, dtype="float32")
                out = torch.from_numpy(data)
                found[f"{snr:g}dB_{method}_seconds_out"] = out.numel() / out_rate
                found[f"{snr:g}dB_{method}_level_change_db"] = level_db(out) - level_db(noisy)
            found[f"{snr:g}dB_{method}_pesq"] = pesq_nb(clean, out, rate)
            found[f"{snr:g}dB_{method}_stoi"] = stoi(clean, out, rate)
            found[f"{snr:g}dB_{method}_si_sdr"] = si_sdr(clean, out)
        found[f"{snr:g}dB_seconds_in"] = noisy.numel() / rate
    stereo = folder / "newcomer_stereo_16k.wav"
    wide = resample(torch.from_numpy(sf.read(folder / "newcomer_0dB.wav", dtype="float32")[0]), rate, 16000)
    sf.write(stereo, np.stack([wide.numpy(), wide.numpy()], 1), 16000)
    best = "vae_nmf_robust" if with_robust else "vae_nmf"
    enhance_file(model, enhancer_for(model, best, config), stereo, folder / "stereo" / stereo.name)
    data, out_rate = sf.read(folder / "stereo" / stereo.name, dtype="float32")
    found.update({"stereo_16k_rate_out": out_rate, "stereo_16k_samples_in": wide.numel(),
                  "stereo_16k_samples_out": data.shape[0], "stereo_16k_channels_out": data.ndim})
    sf.write(folder / "clean.wav", clean.numpy(), rate)
    enhance_file(model, enhancer_for(model, best, config), folder / "clean.wav", folder / "clean_out" / "clean.wav")
    out = torch.from_numpy(sf.read(folder / "clean_out" / "clean.wav", dtype="float32")[0])
    found.update({"clean_in_pesq": pesq_nb(clean, clean, rate), "clean_out_pesq": pesq_nb(clean, out, rate),
                  "clean_out_si_sdr": si_sdr(clean, out)})
    return found

if __name__ == "__main__":
    main()
