"""Speech metrics for `vaekit eval`: NLL per frame, mel L1 (dB), log-spectral distance, classifier scores.

A digit (label) classifier and a speaker classifier are trained on the real training mels by the
evaluation itself and cached in the run folder as safetensors; they score reconstructions,
label-conditioned samples and voice conversions, against their accuracy on real audio (the ceiling).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit.plugin_api import VAE, cached_classifier, relative_scores, report_classifier, run_dir_of

from .conversion import CONVERSIONS, available_conversions, conversion_of, conversions

CLASSIFIER_VERSION = 2  # 2: any length (pooled over time)


class MelClassifier(nn.Module):
    """A small CNN over normalised log-mels [B, n_mels, T] of any length with a frame mask; logits [B, classes].

    Three stride-2 conv layers over (mel bins x frames), then mean and max over the valid frames.
    """

    def __init__(self, n_mels: int, n_classes: int, width: int = 32):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(2, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
        )
        features = 2 * width * (n_mels // 8)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(2 * features, 128), nn.SiLU(), nn.Linear(128, n_classes))

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        mask = mask.to(mel.dtype)
        mel = mel * mask[:, None, :]
        plane = mask[:, None, None, :].expand(-1, 1, mel.shape[1], -1)
        h = self.convs(torch.cat([mel[:, None], plane], dim=1))  # [B, C, F/8, T/8]
        h = h.flatten(1, 2)  # [B, C * F/8, T/8]
        valid = F.max_pool1d(F.max_pool1d(F.max_pool1d(mask[:, None], 2, 2, ceil_mode=True), 2, 2, ceil_mode=True),
                             2, 2, ceil_mode=True)[:, :, : h.shape[-1]]
        mean = (h * valid).sum(-1) / valid.sum(-1).clamp(min=1)
        peak = h.masked_fill(valid == 0, -1e4).amax(-1)
        return self.head(torch.cat([mean, peak], -1))


def augment(mel: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Noise, a gain shift and a blur, so the classifier judges content rather than decoder smoothness."""
    b = mel.shape[0]
    noise = 0.2 * torch.randn(mel.shape, generator=generator)
    gain = 0.3 * torch.randn(b, 1, 1, generator=generator)
    blurred = F.avg_pool2d(mel[:, None], 3, stride=1, padding=1, count_include_pad=False)[:, 0]
    use_blur = (torch.rand(b, 1, 1, generator=generator) < 0.5).to(mel.dtype)
    mel = use_blur * blurred + (1 - use_blur) * mel
    return (mel + noise + gain) * mask[:, None, :]


def train_classifier(dataset, target: str, n_classes: int, n_mels: int, epochs: int = 8,
                     batch_size: int = 64, seed: int = 0) -> MelClassifier:
    """Fit a MelClassifier to the dataset's `label` or `speaker` (cross-entropy, Adam); leaves global RNG alone."""
    from .data import collate

    generator = torch.Generator().manual_seed(seed)
    keep = [i for i in range(len(dataset)) if dataset.targets(i)[0 if target == "label" else 1] >= 0]
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        model = MelClassifier(n_mels, n_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        steps = epochs * ((len(keep) + batch_size - 1) // batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=max(1, steps))
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(keep), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                batch = collate([dataset[keep[i]] for i in order[start:start + batch_size]])
                x = batch["x"]
                logits = model(augment(x["mel"], x["mask"], generator), x["mask"])
                loss = F.cross_entropy(logits, batch[target])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    return model.eval()


def classifier_key(info: dict, target: str, epochs: int) -> dict:
    """What a cached classifier depends on: the data settings, its target and its training length."""
    return {"version": CLASSIFIER_VERSION, "target": target, "epochs": epochs, "data": info["data"],
            "seed": info.get("seed", 0)}


def get_classifiers(model: VAE, epochs: int = 8, cache_dir: Path | None = None, train_data=None
                    ) -> dict[str, MelClassifier]:
    """{"label": ..., "speaker": ...} for every target the data has classes for; cached as safetensors."""
    info = model.config["info"]
    counts = {"label": len(info["labels"]), "speaker": len(info["speakers"])}
    wanted = {t: n for t, n in counts.items() if n >= 2}
    classifiers = {}
    for target, n_classes in wanted.items():
        def fit(classifier, target=target, n_classes=n_classes):
            nonlocal train_data
            if train_data is None:  # only when no cached classifier matches
                train_data = rebuild_train_split(info)
            trained = train_classifier(train_data, target, n_classes, info["n_mels"], epochs, seed=info.get("seed", 0))
            classifier.load_state_dict(trained.state_dict())

        # The engine's cache: weights reused only for exactly this key (data settings, target, epochs, version).
        classifiers[target] = cached_classifier(lambda n=n_classes: MelClassifier(info["n_mels"], n), fit,
                                                classifier_key(info, target, epochs), cache_dir, name=target)
    return classifiers


def rebuild_train_split(info: dict):
    """The training split the model was trained on, rebuilt from the data settings kept in info.

    Digit strings give their single training recordings instead: the classifiers learn words, then score
    each word of a string.
    """
    from vaekit.plugin_api import build_dataclass

    from .data import build_splits
    from .data_config import SpeechDataConfig
    from .features import MelStats
    from .strings import single_utterance_config

    cfg = build_dataclass(SpeechDataConfig, info["data"], "data")
    if cfg.source != "fsdd_strings":
        return build_splits(cfg, info.get("seed", 0))[0]
    train, _, _, single_info = build_splits(single_utterance_config(cfg), info.get("seed", 0))
    # Normalised as the strings are (their statistics include the pauses), so a word reads the same either way.
    own, strings = MelStats.from_info(single_info), MelStats.from_info(info)
    train.mels = [strings.normalize(own.denormalize(m)) for m in train.mels]
    return train


# -- distances ------------------------------------------------------------------------------------

def spectral_distances(model: VAE, mel: Tensor, mel_hat: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per utterance: mean |dB error| over bins and frames, and log-spectral distance (dB) on the mel scale.

    LSD = mean over frames of sqrt(mean over mel bins of (dB error)^2).
    """
    std = torch.tensor(model.config["info"]["mel_std"], device=mel.device)[None, :, None]
    error_db = (mel_hat - mel) * std  # the mean cancels in the difference
    frames = mask.sum(-1).clamp(min=1)
    l1 = (error_db.abs().mean(1) * mask).sum(-1) / frames
    lsd = (error_db.pow(2).mean(1).sqrt() * mask).sum(-1) / frames
    return l1, lsd


def resynthesized_mels(model: VAE, mel: Tensor, lengths: Tensor) -> Tensor:
    """Normalised mels -> Griffin-Lim waveforms -> normalised log-mels again (what a listener gets): [B, F, T]."""
    from .data_config import frontend_from
    from .features import MelStats

    info = model.config["info"]
    frontend, stats = frontend_from(info["data"]), MelStats.from_info(info)
    out = torch.zeros_like(mel)
    for i, length in enumerate(lengths.tolist()):
        wave = frontend.to_audio(stats.denormalize(mel[i, :, :length].float().cpu()))
        again = stats.normalize(frontend.log_mel(wave))[:, :length]
        out[i, :, : again.shape[-1]] = again.to(out)
    return out


def reconstruction_pitch(model: VAE, mel: Tensor, mel_hat: Tensor, lengths: Tensor) -> dict[str, list[float]]:
    """Per utterance, f0 of the reconstruction's audio against the input's (each normalised mel through the same
    Griffin-Lim, so the pair differs by the model only): median signed shift and median absolute error in cents
    over frames voiced in both, and the share of the input's voiced frames still voiced (vaekit_speech.pitch)."""
    from .data_config import frontend_from
    from .features import MelStats
    from .pitch import ROUGH_THRESHOLD, pitch_shift_cents

    info = model.config["info"]
    frontend, stats = frontend_from(info["data"]), MelStats.from_info(info)
    found: dict[str, list[float]] = {"pitch_shift_cents": [], "pitch_error_cents": [], "pitch_voiced_kept": []}
    for i, length in enumerate(lengths.tolist()):
        waves = [frontend.to_audio(stats.denormalize(m[i, :, :length].float().cpu())) for m in (mel, mel_hat)]
        shift, error, kept = pitch_shift_cents(waves[0], waves[1], info["sample_rate"], ROUGH_THRESHOLD)
        for name, value in zip(found, (shift, error, kept), strict=True):
            if value == value:  # NaN: the input has no voiced frame, or none is voiced in both
                found[name].append(value)
    return found


def conversion_targets(speakers: Tensor, n_speakers: int) -> Tensor:
    """A different speaker for each utterance, cycling through the others deterministically."""
    shift = 1 + torch.arange(len(speakers), device=speakers.device) % max(1, n_speakers - 1)
    return (speakers + shift) % n_speakers


def scoring_units(mel: Tensor, mask: Tensor, batch: dict, speakers: Tensor | None = None
                  ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(mel, mask, {"label", "speaker"} targets) of what the classifiers score.

    Whole utterances, or for digit strings each word cut out at its known frames. speakers [B] replaces
    the speaker targets (a conversion's target speakers).
    """
    device = mel.device
    if "segments" not in batch:
        speaker = batch["speaker"].to(device) if speakers is None else speakers
        return mel, mask, {"label": batch["label"].to(device), "speaker": speaker}
    pieces, masks, labels, speaker_targets = [], [], [], []
    for i, segments in enumerate(batch["segments"]):
        for first, end, label, speaker in segments.tolist():
            pieces.append(mel[i, :, first:end])
            masks.append(mask[i, first:end])
            labels.append(label)
            speaker_targets.append(speaker if speakers is None else int(speakers[i]))
    width = max(p.shape[-1] for p in pieces)
    mel_out = torch.stack([F.pad(p, (0, width - p.shape[-1])) for p in pieces])
    mask_out = torch.stack([F.pad(m, (0, width - m.shape[-1])) for m in masks])
    return mel_out, mask_out, {"label": torch.tensor(labels, device=device),
                               "speaker": torch.tensor(speaker_targets, device=device)}


# -- the whole evaluation -------------------------------------------------------------------------

@torch.no_grad()
def speech_metrics(model: VAE, loader, summary: dict[str, float], classifier_epochs: int = 8,
                   eval_samples: int = 200, classifier_dir: str | Path | None = None, classifiers=None,
                   score_audio: bool = False, pitch_utterances: int = 20, **options) -> dict[str, float]:
    """Frame-level NLL, mel L1 (dB), LSD (dB), classifier accuracies (fractions) and the pitch error of
    reconstructions (cents, medians over the first pitch_utterances utterances; see reconstruction_pitch) on the
    eval split.

    score_audio also classifies reconstructions after a round trip through Griffin-Lim audio (slower).
    """
    from .conditions import condition_grid
    from .lengths import sample_utterances, seconds_to_frames

    info = model.config["info"]
    device = model.device
    condition_on = info.get("condition_on", [])
    label_name, speaker_name = info["label_name"], info["speaker_name"]
    if classifiers is None:
        run_dir = run_dir_of(model)
        cache = Path(classifier_dir) if classifier_dir else run_dir / "speech_classifiers" if run_dir else None
        classifiers = get_classifiers(model, classifier_epochs, cache)
    classifiers = {k: c.to(device).eval() for k, c in classifiers.items()}
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}

    def add(name: str, values: Tensor) -> None:
        totals[name] = totals.get(name, 0.0) + float(values.float().sum())
        counts[name] = counts.get(name, 0) + values.numel()

    def score(prefix: str, mel: Tensor, mask: Tensor, batch: dict, speakers: Tensor | None = None) -> None:
        """Classifier hits on whole utterances, or on each word of a digit string (its segments)."""
        mel, mask, targets = scoring_units(mel, mask, batch, speakers)
        for target, classifier in classifiers.items():
            known = targets[target] >= 0
            if known.any():
                name = label_name if target == "label" else speaker_name
                add(f"{name}_acc_{prefix}", (classifier(mel, mask).argmax(-1) == targets[target])[known])

    n_converted = n_pitched = 0
    pitch: dict[str, list[float]] = {}
    for batch in loader:
        x = {k: v.to(device) for k, v in batch["x"].items()}
        c = batch["c"].to(device) if "c" in batch else None
        lengths = x["mask"].sum(-1).round().long()
        add("frames", lengths)
        z = model.encode(x, c).mode()
        recon = model.decode(z, c, lengths=lengths)
        mel_hat = recon["mel"][..., : x["mel"].shape[-1]]
        l1, lsd = spectral_distances(model, x["mel"], mel_hat, x["mask"])
        add("mel_l1_db", l1)
        add("lsd_db", lsd)
        score("real", x["mel"], x["mask"], batch)
        score("recon", mel_hat, x["mask"], batch)
        if n_pitched < pitch_utterances:
            take = min(len(lengths), pitch_utterances - n_pitched)
            for name, values in reconstruction_pitch(model, x["mel"][:take], mel_hat[:take], lengths[:take]).items():
                pitch.setdefault(name, []).extend(values)
            n_pitched += take
        if score_audio:  # the same classifiers on the WAVs people hear: Griffin-Lim, then features again
            score("recon_audio", resynthesized_mels(model, mel_hat, lengths), x["mask"], batch)
        if "speaker" in condition_on and n_converted < eval_samples and len(info["speakers"]) > 1:
            column = condition_on.index("speaker")
            new = conversion_targets(c[:, column], len(info["speakers"]))
            c_target = c.clone()
            c_target[:, column] = new
            ways = conversions(model, x, c, c_target, available_conversions(model), z=z)  # one decode per condition
            for how, converted in ways.items():
                name = "converted" if how == conversion_of(model) else f"converted_{how}"
                score(name, converted["mel"], x["mask"], batch, speakers=new)
            n_converted += len(new)

    results = {name: totals[name] / max(1, counts[name]) for name in totals if name != "frames"}
    # The median over utterances: an octave error in one utterance (1,200 cents) would swamp a mean.
    results.update({name: float(torch.tensor(values).median()) if name != "pitch_voiced_kept" else
                    sum(values) / len(values) for name, values in pitch.items() if values})
    mean_frames = totals.get("frames", 0.0) / max(1, counts.get("frames", 1))
    results["frames_per_utterance"] = mean_frames
    for key in ("nll", "elbo", "rec"):
        if key in summary and mean_frames > 0:
            value = -summary[key] if key == "elbo" else summary[key]
            results[f"{'neg_elbo' if key == 'elbo' else key}_per_frame"] = value / mean_frames

    if info.get("conditions") and eval_samples > 0:
        conditions = condition_grid(info, None, eval_samples, device)
        samples = sample_utterances(model, eval_samples, conditions, seconds_to_frames(info, None))
        for target, classifier in classifiers.items():
            if target in condition_on:
                column = condition_on.index(target)
                name = label_name if target == "label" else speaker_name
                hits = classifier(samples["mel"], samples["mask"]).argmax(-1) == conditions[:, column]
                results[f"{name}_acc_samples"] = hits.float().mean().item()
    kinds = ("recon", "recon_audio", "samples", "converted", *(f"converted_{how}" for how in CONVERSIONS))
    for name in (label_name, speaker_name):
        real = results.get(f"{name}_acc_real")
        if real:
            scores = {f"{name}_acc_{kind}": results[f"{name}_acc_{kind}"] for kind in kinds
                      if f"{name}_acc_{kind}" in results}
            results.update({f"{key}_relative": value for key, value in relative_scores(real, scores).items()})
            # one line with the real accuracy beside each score, and a warning when the classifier cannot judge
            report_classifier(f"{name} classifier ({classifier_epochs} epochs)", real, scores,
                              remedy="train it longer (vaekit eval --classifier-epochs N)")
    return results
