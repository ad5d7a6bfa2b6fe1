r"""Digit strings at real length: reconstruct and voice-convert whole sentences, scored word by word.

Trains recipes/speech/fsdd_strings.yaml (a speaker CVAE with a latent per 32 ms) with the vaekit trainer for
--max-minutes of wall time (trainer.max_minutes) or its epochs, whichever ends first, then on the test strings
(3-8 test recordings of one speaker joined with pauses, 2-8 s; words the model never heard) measures, with the
evaluation's digit and speaker classifiers (trained on single training recordings) applied to each word at its
known boundaries:

- reconstruction: per-word digit accuracy against the same classifier on the real strings (target >= 95%
  of it), on the mel and after Griffin-Lim audio; output length = input length for every string;
- voice conversion of every test string to each other speaker: per-word share classified as the target
  speaker (target >= 90%) and keeping its digit (target >= 90%), and the digit kept per speaker pair;
- how much of the voice the code holds: a linear probe's speaker accuracy from each string's pooled posterior
  means (trained on the training strings; chance 1/6);
- mel L1 (dB), log-spectral distance on the mel scale and on the LINEAR spectrum of the audio (dB);
- speed: seconds of audio trained per second of training (by trainer.clock), wall time to reconstruct a 30 s
  recording (model alone, and with Griffin-Lim for input and output WAVs).

    python benchmarks/speech_strings.py --device cuda --max-minutes 5
    python benchmarks/speech_strings.py --smoke            # a few steps, one audio string: checks the script

The last line printed is the JSON of every figure; the result file is fsdd_strings.json (fsdd_strings_train.json
under --train-only). Expected on an H200: about 8 minutes with --max-minutes 5
(data ~1 min, classifiers ~1 min on the CPU cores, evaluation with 60 Griffin-Lim strings ~1-2 min).

On one CPU core, the recipe for 900 steps (seeds 0 and 1; benchmarks/results/fsdd_strings.json):

    python benchmarks/speech_strings.py --max-minutes 1000 --max-steps 900 --audio-strings 10 --threads 1 --seed 0

--model W/model --work-dir W scores a model already trained into W again (e.g. with --conversion moments
--choose-smoothing-ms 0,112,144,200,272 --choose-scales 0.25,0.5,0.75, which picks the conversion's window and
share on the validation strings). --train-only trains and writes the training figures without scoring. The JSON
holds the loss curve ("curve") and every gradient-norm spike ("grad_spikes", from the train records of the run's
metrics.jsonl), so a collapse or an explosion shows when it came. One script of about 460 lines: every figure
reads the same trained model, test strings and classifiers; each measurement is its own function.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import soundfile as sf
import torch
from common import (
    QUIET,
    REPO,
    add_common_flags,
    chosen_figures,
    seed_override,
    train_in_process,
    training_figures,
    work_folder,
    write_result,
)
from torch.utils.data import DataLoader
from vaekit_speech import plugin
from vaekit_speech.audio import write_audio
from vaekit_speech.conversion import (
    conversion_of,
    decoded_mel,
    fit_frames,
    moments_mel,
    moved_moments,
    residual_mel,
    scale_of,
    smoothing_of,
    speaker_moments,
    window_frames,
)
from vaekit_speech.data_config import frontend_from
from vaekit_speech.features import MelStats
from vaekit_speech.metrics import get_classifiers, scoring_units
from vaekit_speech.spectra import linear_lsd

import vaekit
from vaekit.cli import at_least
from vaekit.core.batch import to_device
from vaekit.evaluation.evaluate import evaluate
from vaekit.runs import load
from vaekit.training.trainer import seed_everything

# The result file's figures: name: (the script's figure, factor, decimals); shares of words in %.
FIGURES = {"recon_digit_relative": ("digit_acc_recon_relative", 100, 1),
           "conversion_digit_kept": ("digit_acc_converted", 100, 1),
           "conversion_target_speaker": ("speaker_acc_converted", 100, 1),
           "recon_audio_digit_relative": ("digit_acc_recon_audio_relative", 100, 1), "mel_l1_db": ("mel_l1_db", 1, 2),
           "lsd_db": ("lsd_db", 1, 2), "steps": ("steps", 1, 0), "train_seconds": ("train_seconds", 1, 0)}


def train_strings(args, overrides: list[str]):
    """Train the recipe with the vaekit trainer for --max-minutes of wall time (at most --max-steps); the Trainer
    (its model and data), and the training figures with the seconds of audio trained."""
    steps = [f"trainer.max_steps={args.max_steps}"] if args.max_steps else []
    steps += [f"trainer.threads={args.threads}"] if args.threads else []
    recipe = vaekit.load_recipe(args.recipe, [*QUIET, *steps, f"trainer.max_minutes={args.max_minutes}",
                                              f"trainer.device={args.device}", *overrides])
    run = args.work_dir / "run"
    trainer = train_in_process(recipe, run)
    timing = training_figures(run, amounts=("audio_seconds",))
    audio, seconds = timing.pop("audio_seconds"), timing["train_seconds"]
    return trainer, {**timing, "clock": recipe.trainer.clock, "epochs": timing["steps"] / trainer.steps_per_epoch,
                     "audio_seconds_trained": audio, "audio_seconds_per_second": audio / max(seconds, 1e-9)}


class Tally:
    """Running hit counts per name."""

    def __init__(self):
        self.hits: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, hits: torch.Tensor) -> None:
        self.hits[name] = self.hits.get(name, 0.0) + float(hits.float().sum())
        self.counts[name] = self.counts.get(name, 0) + hits.numel()

    def result(self) -> dict[str, float]:
        return {name: self.hits[name] / max(1, self.counts[name]) for name in self.hits}


@torch.no_grad()
def word_scores(tally: Tally, prefix: str, classifiers: dict, mel, mask, batch, speakers=None) -> dict:
    """Per-word digit and speaker hits of mels [B, F, T] (a batch of strings) under their segments: tallied and
    returned as {"digit": hits [words], "speaker": ...}."""
    mel, mask, targets = scoring_units(mel, mask, batch, speakers)
    hits = {}
    for target, name in (("label", "digit"), ("speaker", "speaker")):
        if target in classifiers:
            hits[name] = classifiers[target](mel, mask).argmax(-1) == targets[target]
            tally.add(f"{name}_acc_{prefix}", hits[name])
    return hits


@torch.no_grad()
def conversions(model, loader, classifiers: dict, how: str, settings: list[tuple[float, float]]) -> dict[tuple, dict]:
    """Every string converted to each other speaker, decoded and the `how` way (residual or moments) at each
    (window ms, scale) of settings: {setting: per-word target-speaker and digit-kept accuracies, decoded
    ("converted_decoded") and `how` ("converted"), with digit kept per speaker pair}. Each string is decoded once
    under its own speaker and once under each target, whatever the number of settings."""
    speakers = model.config["info"]["speakers"]
    tallies, by_pair, n_speakers = {s: Tally() for s in settings}, {s: Tally() for s in settings}, len(speakers)
    frames_of = {ms: window_frames(model, ms) for ms, _ in settings}
    decoded_tally, frames_equal = Tally(), True
    moments = model.config["info"].get("speaker_moments")
    for batch in loader:
        batch = to_device(batch, model.device)
        x, c = batch["x"], batch["c"]
        lengths, frames = x["mask"].sum(-1).round().long(), x["mel"].shape[-1]
        z = model.encode(x, c).mode()
        own = decoded_mel(model, z, c, lengths, frames)
        for shift in range(1, n_speakers):
            target = (c[:, 0] + shift) % n_speakers
            out = model.decode(z, target[:, None], lengths=lengths)
            frames_equal &= bool((out["mask"].sum(-1).round().long() == lengths).all())
            converted = fit_frames(out["mel"], frames)
            word_scores(decoded_tally, "converted_decoded", classifiers, converted, x["mask"], batch, speakers=target)
            words = [(speakers[source], speakers[to]) for segments, to in zip(batch["segments"], target.tolist(),
                                                                              strict=True)
                     for source in segments[:, 3].tolist()]  # one per word, in scoring_units' order
            moved = moved_moments(x, moments, c[:, 0], target) if how == "moments" else None
            for ms, scale in settings:  # what `reconstruct` writes
                window = frames_of[ms]
                mel = moments_mel(x, moved, converted, own, window, scale) if how == "moments" else \
                    residual_mel(x, converted, own, window)
                hits = word_scores(tallies[ms, scale], "converted", classifiers, mel, x["mask"], batch,
                                   speakers=target)
                for (source, to), hit in zip(words, hits["digit"], strict=True):
                    by_pair[ms, scale].add(f"{source}>{to}", hit)
    results = {}
    for setting in settings:
        pairs = by_pair[setting].result()
        matrix = {a: {b: pairs[f"{a}>{b}"] for b in speakers if f"{a}>{b}" in pairs} for a in speakers}
        results[setting] = {**decoded_tally.result(), **tallies[setting].result(),
                            "converted_frames_equal_input": frames_equal, "digit_kept_converted_by_pair": matrix}
    return results


def scores_only(result: dict) -> dict:
    """The conversions' digit-kept and target-speaker shares of one setting's result."""
    return {"digit": result["digit_acc_converted"], "speaker": result["speaker_acc_converted"]}


def numbers_list(text: str) -> list[float]:
    """argparse type: numbers (ms, scales) separated by commas, each 0 or more."""
    number = at_least(0, kind=float)
    return [number(part) for part in text.split(",")]


def chosen_setting(scores: dict[tuple, dict], target: float = 0.90) -> tuple:
    """The setting keeping the most digits among those whose conversions keep target of words heard as the target
    speaker (else the one heard most as the target)."""
    kept = [s for s, result in scores.items() if result["speaker_acc_converted"] >= target]
    if not kept:
        return max(scores, key=lambda s: scores[s]["speaker_acc_converted"])
    return max(kept, key=lambda s: scores[s]["digit_acc_converted"])


@torch.no_grad()
def pooled_codes(model, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Each string's posterior mean and mean square over its valid latent steps [N, 2D], and its speaker [N]."""
    codes, speakers = [], []
    for batch in loader:
        batch = to_device(batch, model.device)
        posterior = model.encode(batch["x"], batch["c"])
        valid = posterior.mask.to(posterior.mean.dtype)[..., None]
        steps = valid.sum(1).clamp(min=1)
        codes.append(torch.cat([(posterior.mean * valid).sum(1) / steps, (posterior.mean ** 2 * valid).sum(1) / steps],
                               -1).float().cpu())
        speakers.append(batch["c"][:, 0].cpu())
    return torch.cat(codes), torch.cat(speakers)


def speaker_in_code(model, train_loader, test_loader) -> float:
    """Test accuracy of a linear probe reading the speaker from a string's pooled code (trained on the training
    strings): how much of the voice the encoder leaves in z. Chance is 1 / speakers."""
    train_codes, train_speakers = pooled_codes(model, train_loader)
    test_codes, test_speakers = pooled_codes(model, test_loader)
    center, spread = train_codes.mean(0), train_codes.std(0) + 1e-6
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        probe = torch.nn.Linear(train_codes.shape[1], len(model.config["info"]["speakers"]))
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=500)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe((train_codes - center) / spread), train_speakers)
        loss = loss + 1e-3 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float((probe((test_codes - center) / spread).argmax(-1) == test_speakers).float().mean())


def audio_round_trips(model, dataset, classifiers: dict, n: int, work: Path) -> dict:
    """The first n test strings as WAV files through `reconstruct` (Griffin-Lim), scored per word on the audio."""
    info = model.config["info"]
    if n <= 0:
        return {"audio_strings": 0, "audio_length_within_one_hop": None}
    frontend, stats = frontend_from(info["data"]), MelStats.from_info(info)
    hop, rate = info["data"]["hop_length"], info["sample_rate"]
    tally, lsd_recon, lsd_input, worst_length_error = Tally(), [], [], 0
    folder = work / "strings"
    for i in range(min(n, len(dataset))):
        string = dataset.strings[i]
        path = write_audio(folder / f"{string.name}.wav", string.wave, rate)
        written = plugin.reconstruct(model, [str(path)], None, folder / "out", source=f"speaker={string.speaker}")
        waves = {p.stem.rsplit("_", 1)[-1]: torch.from_numpy(sf.read(str(p), dtype="float32")[0])
                 for p in written if p.suffix == ".wav"}
        item = dataset[i]
        batch = {"segments": [item["segments"]], "label": item["label"][None], "speaker": item["speaker"][None]}
        real = item["x"]["mel"][None].to(model.device)  # the same words on the mel, for a like-for-like ceiling
        word_scores(tally, "real_same_strings", classifiers, real, torch.ones(1, real.shape[-1], device=model.device),
                    batch)
        for kind, wave in (("real_audio", waves["input"]), ("recon_audio", waves["recon"])):
            worst_length_error = max(worst_length_error, abs(wave.numel() - string.wave.numel()))
            mel = stats.normalize(frontend.log_mel(wave))[None].to(model.device)
            frames = item["x"]["mel"].shape[-1]
            mel = torch.nn.functional.pad(mel, (0, max(0, frames - mel.shape[-1])))[..., :frames]
            word_scores(tally, kind, classifiers, mel, torch.ones(1, frames, device=model.device), batch)
        lsd_recon.append(linear_lsd(string.wave, waves["recon"], frontend))
        lsd_input.append(linear_lsd(string.wave, waves["input"], frontend))
    return {**tally.result(), "audio_strings": min(n, len(dataset)),
            "lsd_linear_db": sum(lsd_recon) / len(lsd_recon),
            "lsd_linear_db_griffin_lim_only": sum(lsd_input) / len(lsd_input),
            "audio_length_error_samples_max": worst_length_error, "hop_samples": hop,
            "audio_length_within_one_hop": worst_length_error <= hop}


def thirty_seconds(model, dataset, work: Path) -> dict:
    """Wall time to reconstruct a 30 s recording (test strings of one speaker back to back)."""
    info = model.config["info"]
    rate = info["sample_rate"]
    speaker = dataset.strings[0].speaker
    parts = [s.wave for s in dataset.strings if s.speaker == speaker]
    wave = torch.cat(parts)[: 30 * rate]
    if wave.numel() < 30 * rate:
        wave = wave.repeat(-(-30 * rate // wave.numel()))[: 30 * rate]
    path = write_audio(work / "thirty_seconds.wav", wave, rate)
    x = plugin_batch(model, path)
    c = plugin_condition(model, speaker)
    sync(model)
    start = time.perf_counter()
    with torch.no_grad():
        z = model.encode(x, c).mode()
        out = model.decode(z, c, lengths=x["mask"].sum(-1).round().long())
    sync(model)
    model_seconds = time.perf_counter() - start
    start = time.perf_counter()
    written = plugin.reconstruct(model, [str(path)], None, work / "thirty_out", source=f"speaker={speaker}")
    total_seconds = time.perf_counter() - start
    recon = next(p for p in written if p.name.endswith("_recon.wav"))
    frames_out = sf.info(str(recon)).frames
    return {"thirty_s_model_wall_seconds": model_seconds, "thirty_s_reconstruct_wall_seconds": total_seconds,
            "thirty_s_input_samples": wave.numel(), "thirty_s_output_samples": frames_out,
            "thirty_s_frames_in": int(x["mask"].sum()), "thirty_s_frames_out": int(out["mask"].sum())}


def plugin_batch(model, path: Path) -> dict:
    from vaekit_speech.inputs import encode_inputs

    return encode_inputs(model, [str(path)])


def plugin_condition(model, speaker: str) -> torch.Tensor:
    from vaekit_speech.conditions import parse_condition_text

    return parse_condition_text(f"speaker={speaker}", model.config["info"], "--source").to(model.device)


def sync(model) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--max-minutes", type=float, default=5.0, help="training wall time")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on training steps")
    parser.add_argument("--train-only", action="store_true",
                        help="write the training figures (curve, grad_spikes) and stop: no classifiers, no scoring")
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "speech" / "fsdd_strings.yaml")
    parser.add_argument("--iw-samples", type=int, default=0, help="importance samples per test string (0 = skip)")
    parser.add_argument("--classifier-epochs", type=int, default=8)
    parser.add_argument("--audio-strings", type=int, default=60, help="test strings scored through Griffin-Lim audio")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--data", default=os.environ.get("VAEKIT_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--model", type=Path, default=None,
                        help="score this saved model (a --work-dir DIR/model folder or a run) instead of training one; "
                             "give the seed it was trained with as an override (seed=S) so the strings match")
    parser.add_argument("--conversion", choices=("residual", "moments"), default=None,
                        help="how conversions are made (default: the model's model.conversion, residual if decoded); "
                             "moments on a model saved without speaker statistics takes them from the training "
                             "strings")
    windows = parser.add_mutually_exclusive_group()
    windows.add_argument("--smoothing-ms", type=at_least(0, kind=float), default=None,
                         help="conversions' window in ms (default: the model's conversion_smoothing_ms)")
    windows.add_argument("--choose-smoothing-ms", type=numbers_list, default=None, metavar="MS,MS,...",
                         help="choose conversions' window on the validation strings: the one keeping the most digits "
                              "among those keeping 90%% of words heard as the target speaker; every one is scored on "
                              "test too")
    parser.add_argument("--choose-scales", type=numbers_list, default=None, metavar="A,A,...",
                        help="moments: choose conversion_scale with the window on the validation strings (as "
                             "--choose-smoothing-ms; default: the model's scale)")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. model.latent_dim=4")
    args = add_common_flags(parser, work_aliases=("--work",)).parse_args()
    os.environ["VAEKIT_DATA"] = args.data
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [*args.overrides, *seed_override(args)]
    if args.smoke:
        args.max_minutes, args.max_steps, args.audio_strings, args.classifier_epochs = 0.5, 3, 1, 1
        overrides += ["subset.train=32", "subset.val=8", "subset.test=8"]
    with work_folder(args):
        measure(args, parser, overrides)


def measure(args, parser: argparse.ArgumentParser, overrides: list[str]) -> None:
    """Train (or load) the model, score it and write the result file."""
    if args.model:
        recipe = vaekit.load_recipe(args.recipe, overrides)
        seed_everything(recipe.seed)
        assets = args.work_dir / "assets"
        assets.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        bundle = vaekit.build_recipe_data(plugin, recipe, assets)
        model = load(args.model, args.device)[0]
        timing = {"model": str(args.model), "data_seconds": time.perf_counter() - started}
    else:
        trainer, timing = train_strings(args, overrides)
        recipe, bundle, model = trainer.recipe, trainer.data, trainer.model.eval()
        print(f"trained {timing['steps']} steps ({timing['epochs']:.1f} epochs) in {timing['train_seconds']:.0f} "
              f"{timing['clock']}-s", flush=True)
    print(f"{len(bundle.train)} train / {len(bundle.test)} test strings ({bundle.info['strings']}), "
          f"{sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    recipe_path = os.path.relpath(args.recipe.resolve(), REPO)
    if args.train_only:
        write_result(args, "fsdd_strings_train", f"{recipe_path}: {timing['steps']} training steps, loss curve and "
                     "gradient spikes", {"overrides": overrides, **timing}, recipe=recipe_path,
                     notes="the curve and the spikes are in the details file")
        print(f"{len(timing.get('grad_spikes', []))} gradient-norm spikes: " + json.dumps(timing.get("grad_spikes")))
        return
    if not args.model:
        model.save_pretrained(args.work_dir / "model")
    started = time.perf_counter()
    classifiers = {k: c.to(args.device).eval() for k, c in
                   get_classifiers(model, args.classifier_epochs, args.work_dir / "classifiers").items()}
    classifier_seconds = time.perf_counter() - started

    def in_order(split):  # a split's strings in order, in evaluation batches
        return DataLoader(split, batch_size=recipe.eval.batch_size, shuffle=False, collate_fn=bundle.collate)

    loader = in_order(bundle.test)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        summary = evaluate(model, loader, iw_samples=args.iw_samples)
        summary.pop("kl_per_dim", None)
        metrics = plugin.eval_metrics(model, loader, summary, classifiers=classifiers, eval_samples=len(bundle.test))
    how = args.conversion or ("residual" if conversion_of(model) == "decoded" else conversion_of(model))
    if args.choose_scales and how != "moments":
        parser.error(f"--choose-scales: scales are for moments conversions; this run's are {how} (give --conversion)")
    if how == "moments" and "speaker_moments" not in model.config["info"]:
        model.config["info"].update(speaker_moments(bundle.train, len(bundle.info["speakers"])))
    smoothing_ms = smoothing_of(model) if args.smoothing_ms is None else args.smoothing_ms
    scales = args.choose_scales or [scale_of(model) if how == "moments" else 1.0]
    settings = [(ms, a) for ms in (args.choose_smoothing_ms or [smoothing_ms]) for a in scales]
    setting, choice = settings[0], {}
    if len(settings) > 1:
        on_val = conversions(model, in_order(bundle.val), classifiers, how, settings)
        setting = chosen_setting(on_val)
        choice = {"val": {f"{ms}ms x{a}": scores_only(r) for (ms, a), r in on_val.items()},
                  "val_strings": len(bundle.val)}
    on_test = conversions(model, loader, classifiers, how, settings)
    converted = on_test[setting]
    if choice:
        converted["setting_choice"] = {**choice, "test": {f"{ms}ms x{a}": scores_only(r)
                                                          for (ms, a), r in on_test.items()},
                                       "chosen": f"{setting[0]}ms x{setting[1]}"}
    converted["speaker_probe_acc_code"] = speaker_in_code(model, in_order(bundle.train), loader)
    audio = audio_round_trips(model, bundle.test, classifiers, args.audio_strings, args.work_dir)
    speed = thirty_seconds(model, bundle.test, args.work_dir)
    results = {"conversion": how, "conversion_smoothing_ms": setting[0], "conversion_scale": setting[1],
               "device": str(model.device), "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda")
               else None, "max_minutes": args.max_minutes, "test_strings": len(bundle.test),
               "classifier_seconds": classifier_seconds, **timing, **summary,
               **{k: v for k, v in metrics.items() if "converted" not in k}, **converted, **audio, **speed}
    real = results.get("digit_acc_real") or float("nan")
    results["digit_acc_recon_relative"] = results.get("digit_acc_recon", 0.0) / real
    results["digit_acc_recon_audio_relative"] = results.get("digit_acc_recon_audio", 0.0) / real
    results["targets"] = {
        "recon_digit_relative>=0.95": results["digit_acc_recon_relative"] >= 0.95,
        "converted_speaker>=0.90": results.get("speaker_acc_converted", 0.0) >= 0.90,
        "converted_digit>=0.90": results.get("digit_acc_converted", 0.0) >= 0.90,
        "output_length_equals_input": bool(results["audio_length_within_one_hop"] is not False
                                           and results["converted_frames_equal_input"]
                                           and results["thirty_s_frames_in"] == results["thirty_s_frames_out"]),
    }
    # Wall seconds on a shared machine say more of the machine than of the run: the file keeps process CPU time only
    # (train_seconds under trainer.clock=process).
    chosen = {k: v for k, v in FIGURES.items() if k != "train_seconds" or timing.get("clock") == "process"}
    write_result(args, "fsdd_strings", f"{recipe_path} for {timing.get('steps', 'its saved')} steps "
                 f"(at most {args.max_minutes} wall-minutes): reconstructing and converting digit strings, word by "
                 "word", results, recipe=recipe_path, metrics=chosen_figures(results, chosen), per_seed=True,
                 headline=["recon_digit_relative", "conversion_digit_kept", "conversion_target_speaker"],
                 notes=f"{len(bundle.test)} test strings ({args.audio_strings} through Griffin-Lim audio: "
                       "recon_audio_digit_relative), every word scored at its known boundaries by the evaluation's "
                       "classifiers; recon shares relative to the classifier on the real strings; conversions to "
                       f"every other speaker ({how})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
