"""Enhancement scored on FSDD test recordings mixed with noise: PESQ, STOI, SI-SDR and the digit classifier's
accuracy on the noisy, enhanced and clean audio, for each enhancer on the same mixtures.

    scores = enhancement_scores(model, clips, kinds=("white", "babble"), snrs=(0, 5, 10))
    scores["white_0dB"]["vae_nmf"]["pesq"]

`vaekit eval RUN --enhancement-clips N` and benchmarks/speech_enhancement.py report these figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from vaekit import VAE
from vaekit.plugin_api import run_dir_of

from .audio import load_audio, trim_silence
from .data_config import FSDD_NAME, frontend_from
from .enhancement import VAENMFConfig, level_gain, spectral_gating, vae_nmf, wiener
from .features import MelStats
from .metrics import get_classifiers
from .noise import noisy_version
from .quality import pesq_nb, si_sdr, stoi
from .robust_encoder import enhancer_dir, load_robust_encoder

ENHANCERS = ("noisy", "spectral_gating", "wiener", "vae_nmf")
PESQ_NO_SPEECH = 1.0  # the bottom of the MOS-LQO scale: an output in which PESQ finds no speech scores this


def enhancers(model: VAE, config: VAENMFConfig | None = None, robust_encoder=None) -> dict[str, Callable]:
    """name -> f(wave at the model's rate) -> enhanced wave: the baselines and the VAE's (robust_encoder adds
    vae_nmf_robust, the same fit started from the noise-robust encoder)."""
    rate = model.config["info"]["sample_rate"]
    found = {"noisy": lambda w: w, "spectral_gating": lambda w: spectral_gating(w, rate),
             "wiener": lambda w: wiener(w, rate), "vae_nmf": lambda w: vae_nmf(model, w, config)}
    if robust_encoder is not None:
        found["vae_nmf_robust"] = lambda w: vae_nmf(model, w, config, encoder=robust_encoder)
    return found


def fsdd_clips(root: str | Path, split: str, count: int) -> list[Path]:
    """`count` FSDD recordings of a split (test: index 0-4; train: 5 and above), spread over digits and speakers."""
    files = sorted(p for p in Path(root).glob("*.wav") if FSDD_NAME.match(p.stem))
    test = [p for p in files if int(FSDD_NAME.match(p.stem).group(3)) < 5]
    chosen = test if split == "test" else [p for p in files if p not in set(test)]
    # every k-th file of the sorted names cycles through digits, speakers and indices alike
    step = max(1, len(chosen) // max(1, count))
    return chosen[::step][:count]


def speaker_of(path: Path) -> str:
    return FSDD_NAME.match(path.stem).group(2)


def digit_of(path: Path) -> int:
    return int(FSDD_NAME.match(path.stem).group(1))


def classify_digit(model: VAE, classifier, wave: Tensor) -> int:
    """The digit classifier's answer for a wave at the model's rate, processed as the training data is."""
    info = model.config["info"]
    data = info["data"]
    if data.get("trim_db") is not None:
        wave = trim_silence(wave, info["sample_rate"], data["trim_db"])
    mel = MelStats.from_info(info).normalize(frontend_from(data).log_mel(wave * level_gain(model, wave)))
    with torch.no_grad():
        return int(classifier(mel[None], torch.ones(1, mel.shape[-1])).argmax(-1))


def pesq_or_none(reference: Tensor, estimate: Tensor, rate: int) -> float | None:
    """Narrow-band PESQ, or None where it cannot score (under 0.25 s, no speech found in an output silenced)."""
    try:
        return pesq_nb(reference, estimate, rate)
    except ValueError:
        return None


def enhancement_scores(model: VAE, clips: list[Path], babble_sources: list[Path], kinds=("white", "babble"),
                       snrs=(0.0, 5.0, 10.0), classifier=None, methods: dict[str, Callable] | None = None,
                       seed: int = 0, progress: Callable[[str], None] | None = None) -> dict:
    """{"KIND_SNRdB": {method: {"pesq", "stoi", "si_sdr", "digit_acc", "pesq_no_speech"}}, "clean": {"digit_acc"},
    "clips_scored"}: PESQ, SI-SDR (dB) and digit_acc (%) are means over clips, STOI is of the clips joined;
    pesq_no_speech is the share of outputs PESQ could not score (no speech found; scored PESQ_NO_SPEECH). Clips
    PESQ cannot score even clean (under 0.25 s) are left out. Babble comes from babble_sources of speakers other
    than each clip's."""
    rate = model.config["info"]["sample_rate"]
    methods = methods or enhancers(model)
    cleans = [load_audio(p, rate) for p in clips]
    scorable = [i for i, clean in enumerate(cleans) if pesq_or_none(clean, clean, rate) is not None]
    if progress and len(scorable) < len(clips):
        progress(f"left out {len(clips) - len(scorable)} clip(s) PESQ cannot score (under 0.25 s or no speech found)")
    clips, cleans = [clips[i] for i in scorable], [cleans[i] for i in scorable]
    scores: dict = {"clips_scored": len(clips)}
    if classifier is not None:
        scores["clean"] = {"digit_acc": 100 * statistics.mean(
            classify_digit(model, classifier, c) == digit_of(p) for c, p in zip(cleans, clips, strict=True))}
    for kind in kinds:
        for snr in snrs:
            rows: dict[str, list[dict]] = {name: [] for name in methods}
            joined: dict[str, list[Tensor]] = {name: [] for name in methods}
            for i, (path, clean) in enumerate(zip(clips, cleans, strict=True)):
                others = [s for s in babble_sources if speaker_of(s) != speaker_of(path)]
                noisy = noisy_version(clean, rate, kind, snr, seed=seed * 1_000_003 + i, babble_sources=others)
                for name, enhance in methods.items():
                    out = enhance(noisy)
                    joined[name].append(out)
                    pesq = pesq_or_none(clean, out, rate)
                    row = {"pesq": PESQ_NO_SPEECH if pesq is None else pesq, "si_sdr": si_sdr(clean, out),
                           "pesq_no_speech": float(pesq is None)}
                    if classifier is not None:
                        row["digit_acc"] = 100.0 * (classify_digit(model, classifier, out) == digit_of(path))
                    rows[name].append(row)
            key = f"{kind}_{snr:g}dB"
            reference = torch.cat(cleans)
            # STOI needs 384 ms of speech frames, more than most digits hold: it scores the clips joined end to end
            scores[key] = {name: {**{m: statistics.mean(r[m] for r in found) for m in found[0]},
                                  "stoi": stoi(reference, torch.cat(joined[name]), rate)}
                           for name, found in rows.items()}
            if progress:
                progress(f"{key}: " + ", ".join(f"{n} pesq {v['pesq']:.2f} stoi {v['stoi']:.3f} "
                                                f"si_sdr {v['si_sdr']:.1f}" for n, v in scores[key].items()))
    return scores


def eval_enhancement(model: VAE, clips: int, classifier_epochs: int = 8, classifier_dir: str | Path | None = None,
                     **options) -> dict[str, float]:
    """`vaekit eval RUN --enhancement-clips N`: enhancement_scores on N FSDD test recordings in white and babble
    noise at 0, 5 and 10 dB, flattened to enhance_{noise}_{snr}dB_{method}_{metric} (and enhance_digit_acc_clean);
    vae_nmf_robust too when the run has a noise-robust encoder (train-enhancer)."""
    data = model.config["info"]["data"]
    if data.get("source") != "fsdd":
        raise ValueError(f"--enhancement-clips: scores FSDD test recordings; this model was trained on "
                         f"data.source {data.get('source')!r} (expected fsdd)")
    run_dir = run_dir_of(model)
    cache = Path(classifier_dir) if classifier_dir else run_dir / "speech_classifiers" if run_dir else None
    classifier = get_classifiers(model, classifier_epochs, cache)["label"].eval()
    robust = load_robust_encoder(model) if run_dir and (enhancer_dir(model) / "encoder.safetensors").is_file() \
        else None
    root = Path(data["root"])
    scores = enhancement_scores(model, fsdd_clips(root, "test", clips), fsdd_clips(root, "train", 10_000),
                                classifier=classifier, methods=enhancers(model, robust_encoder=robust))
    flat = {"enhance_digit_acc_clean": scores.pop("clean")["digit_acc"],
            "enhance_clips_scored": scores.pop("clips_scored")}
    for condition, methods in scores.items():
        for method, metrics in methods.items():
            flat.update({f"enhance_{condition}_{method}_{metric}": value for metric, value in metrics.items()})
    return flat
