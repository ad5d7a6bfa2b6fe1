"""Enhancement scored on FSDD test recordings mixed with noise: PESQ, STOI, SI-SDR and the digit classifier's
accuracy on the noisy, enhanced and clean audio, for each enhancer on the same mixtures.

    scores = enhancement_scores(model, clips, kinds=("white", "babble"), snrs=(0, 5, 10))
    scores["white_0dB"]["vae_nmf"]["pesq"]

`vaekit eval RUN --enhancement-clips N` and benchmarks/speech_enhancement.py report these figures.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from vaekit import VAE
from vaekit.plugin_api import build_dataclass, run_dir_of

from .audio import load_audio, trim_silence
from .data import split_utterances
from .data_config import FSDD_NAME, SpeechDataConfig, frontend_from
from .enhancement import VAENMFConfig, level_gain, robust_settings, spectral_gating, vae_nmf, wiener
from .features import MelStats
from .metrics import get_classifiers
from .noise import noisy_version
from .quality import pesq_nb, si_sdr, stoi
from .robust_encoder import enhancer_dir, load_robust_encoder
from .sources import list_fsdd
from .strings import make_strings

ENHANCERS = ("noisy", "spectral_gating", "wiener", "vae_nmf")
PESQ_NO_SPEECH = 1.0  # the bottom of the MOS-LQO scale: an output in which PESQ finds no speech scores this


def enhancers(model: VAE, config: VAENMFConfig | None = None, robust_encoder=None) -> dict[str, Callable]:
    """name -> f(wave at the model's rate) -> enhanced wave: the baselines and the VAE's (robust_encoder adds
    vae_nmf_robust, the fit started from the noise-robust encoder, with its robust_settings)."""
    rate = model.config["info"]["sample_rate"]
    found = {"noisy": lambda w: w, "spectral_gating": lambda w: spectral_gating(w, rate),
             "wiener": lambda w: wiener(w, rate), "vae_nmf": lambda w: vae_nmf(model, w, config)}
    if robust_encoder is not None:
        settings = robust_settings(config or VAENMFConfig())
        found["vae_nmf_robust"] = lambda w: vae_nmf(model, w, settings, encoder=robust_encoder)
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


@dataclass
class Recording:
    """A clean recording to mix with noise: its speaker (babble comes from others) and each spoken digit's
    [start, end) samples (a single FSDD clip: one word spanning it)."""

    name: str
    speaker: str
    wave: Tensor
    words: list[tuple[int, int, int]]  # (start, end, digit)


def clip_recordings(clips: list[Path], rate: int) -> list[Recording]:
    """FSDD recordings as read for scoring (at the model's rate, untrimmed), one word each."""
    found = []
    for path in clips:
        wave = load_audio(path, rate)
        found.append(Recording(path.stem, speaker_of(path), wave, [(0, wave.numel(), digit_of(path))]))
    return found


def string_recordings(model: VAE, count: int, seed: int = 0) -> list[Recording]:
    """The first `count` test digit strings of recipes/speech/fsdd_strings.yaml (benchmarks/speech_strings.py's:
    3-8 test recordings of one speaker joined with pauses, 2-8 s), at the model's rate and processing."""
    data = model.config["info"]["data"]
    cfg = dataclasses.replace(build_dataclass(SpeechDataConfig, data, "data"), source="fsdd", condition_on=[])
    test = split_utterances(cfg, list_fsdd(cfg), seed)[2]
    strings = make_strings(test, cfg, count, seed * 1000 + 2, "test")  # the seed fsdd_strings gives its test split
    return [Recording(s.name, s.speaker, s.wave, [(a, b, int(u.label)) for (a, b), u in zip(s.bounds, s.words,
                                                                                          strict=True)])
            for s in strings]


def enhancement_scores(model: VAE, recordings: list[Recording], babble_sources: list[Path],
                       kinds=("white", "babble"), snrs=(0.0, 5.0, 10.0), classifier=None,
                       methods: dict[str, Callable] | None = None, seed: int = 0,
                       progress: Callable[[str], None] | None = None) -> dict:
    """{"KIND_SNRdB": {method: {"pesq", "stoi", "si_sdr", "digit_acc", "pesq_no_speech"}}, "clean": {"digit_acc"},
    "clips_scored", "words_scored"}: PESQ and SI-SDR (dB) are means over recordings, STOI is of the recordings
    joined, digit_acc (%) is over the words (each cut out of the output at its known samples); pesq_no_speech is
    the share of outputs PESQ could not score (no speech found; scored PESQ_NO_SPEECH). Recordings PESQ cannot
    score even clean (under 0.25 s) are left out. Babble comes from babble_sources of speakers other than each
    recording's."""
    rate = model.config["info"]["sample_rate"]
    methods = methods or enhancers(model)
    scorable = [r for r in recordings if pesq_or_none(r.wave, r.wave, rate) is not None]
    if progress and len(scorable) < len(recordings):
        progress(f"left out {len(recordings) - len(scorable)} recording(s) PESQ cannot score (under 0.25 s or no "
                 f"speech found)")
    recordings = scorable
    scores: dict = {"clips_scored": len(recordings), "words_scored": sum(len(r.words) for r in recordings)}
    if classifier is not None:
        scores["clean"] = {"digit_acc": words_right(model, classifier, [(r, r.wave) for r in recordings])}
    for kind in kinds:
        for snr in snrs:
            rows: dict[str, list[dict]] = {name: [] for name in methods}
            outputs: dict[str, list[Tensor]] = {name: [] for name in methods}
            for i, recording in enumerate(recordings):
                others = [s for s in babble_sources if speaker_of(s) != recording.speaker]
                noisy = noisy_version(recording.wave, rate, kind, snr, seed=seed * 1_000_003 + i,
                                      babble_sources=others)
                for name, enhance in methods.items():
                    out = enhance(noisy)
                    outputs[name].append(out)
                    pesq = pesq_or_none(recording.wave, out, rate)
                    rows[name].append({"pesq": PESQ_NO_SPEECH if pesq is None else pesq,
                                       "si_sdr": si_sdr(recording.wave, out), "pesq_no_speech": float(pesq is None)})
            key = f"{kind}_{snr:g}dB"
            reference = torch.cat([r.wave for r in recordings])
            # STOI needs 384 ms of speech frames, more than most digits hold: it scores the recordings joined
            scores[key] = {name: {**{m: statistics.mean(r[m] for r in found) for m in found[0]},
                                  "stoi": stoi(reference, torch.cat(outputs[name]), rate)}
                           for name, found in rows.items()}
            if classifier is not None:
                for name in methods:
                    scores[key][name]["digit_acc"] = words_right(
                        model, classifier, list(zip(recordings, outputs[name], strict=True)))
            if progress:
                progress(f"{key}: " + ", ".join(f"{n} pesq {v['pesq']:.2f} stoi {v['stoi']:.3f} "
                                                f"si_sdr {v['si_sdr']:.1f}" for n, v in scores[key].items()))
    return scores


def words_right(model: VAE, classifier, pairs: list[tuple[Recording, Tensor]]) -> float:
    """The digit classifier's accuracy (%) over every word of (recording, output wave) pairs, each word cut out of
    the output at the recording's word boundaries."""
    right = [classify_digit(model, classifier, wave[start:end]) == digit
             for recording, wave in pairs for start, end, digit in recording.words]
    return 100 * statistics.mean(right)


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
    recordings = clip_recordings(fsdd_clips(root, "test", clips), model.config["info"]["sample_rate"])
    scores = enhancement_scores(model, recordings, fsdd_clips(root, "train", 10_000),
                                classifier=classifier, methods=enhancers(model, robust_encoder=robust))
    flat = {"enhance_digit_acc_clean": scores.pop("clean")["digit_acc"],
            "enhance_clips_scored": scores.pop("clips_scored")}
    scores.pop("words_scored")
    for condition, methods in scores.items():
        for method, metrics in methods.items():
            flat.update({f"enhance_{condition}_{method}_{metric}": value for metric, value in metrics.items()})
    return flat
