"""The speech plugin: data, model, and what people do with a trained model (WAVs + mel PNGs).

    vaekit train recipes/speech/fsdd_cvae.yaml
    vaekit sample runs/fsdd_cvae -n 10 --condition speaker=theo           # one per digit, as theo
    vaekit reconstruct runs/fsdd_cvae 3_george_7.wav --condition speaker=jackson   # voice conversion
    vaekit interpolate runs/fsdd 0_theo_1.wav 9_lucas_2.wav
    vaekit sample runs/fsdd_strings -n 4 --seconds 5 --condition speaker=theo
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vaekit import VAE, DataBundle, Plugin, PluginError
from vaekit.plugin_api import DemoKinds, SubsetConfig, at_least, mix, parse_dims, path_weights, traversal

from .conditions import (
    condition_grid,
    condition_suffix,
    parse_condition_text,
    per_class_grid,
    resolve_target,
    source_condition,
)
from .conversion import CONVERSIONS, conversion_of, convert
from .data import SpeechDataConfig, build_splits, collate
from .features import hop_seconds, save_mel_png
from .inputs import encode_inputs, input_gains, input_samples, keep_silence, load_wave, to_db, write_utterances
from .lengths import latent_steps, resample_steps, sample_utterances, seconds_to_frames, seconds_to_samples
from .models import SpeechModelConfig, build_speech_vae


class SpeechPlugin(Plugin):
    """Log-mel VAE / CVAE for speech and other audio; Griffin-Lim back to WAV."""

    name = "speech"
    description = "log-mel VAE and CVAE (digit/speaker), Griffin-Lim audio, voice conversion"
    data_config = SpeechDataConfig
    model_config = SpeechModelConfig
    takes_subset = True  # cut before the mel statistics (and the strings' features) are computed
    demo_kinds = DemoKinds(input="audio", output="audio")

    # -- building -------------------------------------------------------------------------------
    def build_data(self, data: SpeechDataConfig, *, seed: int, assets: Path,
                   subset: SubsetConfig | None = None) -> DataBundle:
        train, val, test, info = build_splits(data, seed, subset)
        return DataBundle(train=train, val=val, test=test, info=info, collate=collate,
                          skipped=list(info["skipped_files"]))

    def build_model(self, model: SpeechModelConfig, info: dict, *, assets: Path) -> VAE:
        return build_speech_vae(model, info)

    def batch_amounts(self, batch: dict, info: dict) -> dict[str, Tensor]:
        """Seconds of audio in a training batch: its valid mel frames times the hop."""
        return {"audio_seconds": batch["x"]["mask"].sum() * hop_seconds(info)}

    # -- CLI options ----------------------------------------------------------------------------
    def add_arguments(self, verb: str, parser) -> None:
        if verb in ("sample", "reconstruct", "interpolate", "traverse"):
            parser.add_argument("--griffin-lim-iters", dest="griffin_lim_iters", type=at_least(1), default=None,
                                help="Griffin-Lim iterations for the WAVs (default: the recipe's)")
        if verb == "sample":
            parser.add_argument("--per-class", dest="per_class", type=at_least(1), default=None, metavar="K",
                                help="K samples per class (digit) of a label-conditioned model, instead of -n")
            parser.add_argument("--format", choices=["files", "folder"], default="files",
                                help="files: NAME.wav each plus samples.png; folder: OUT/<class>/NNNNN.wav only "
                                     "(a class-folder data set, as the image plugin's ImageFolder)")
        if verb in ("sample", "traverse"):
            parser.add_argument("--seconds", type=float, default=None,
                                help="length of each sample in seconds (default: the training data's median); "
                                     "traverse: of the base utterance without --input")
        if verb == "reconstruct":
            parser.add_argument("--source", default=None,
                                help="condition of the inputs, e.g. speaker=george,digit=3 (default: from FSDD "
                                     "file names {digit}_{speaker}_{index})")
            parser.add_argument("--conversion", choices=CONVERSIONS, default=None,
                                help="with --condition: residual = the input plus the decoder's change of voice, "
                                     "decoded = the decoder's rendering alone, moments = the input moved to the "
                                     "target speaker's per-bin statistics plus part of the change (default: the "
                                     "recipe's model.conversion)")
            parser.add_argument("--conversion-smoothing-ms", dest="conversion_smoothing_ms",
                                type=at_least(0, float), default=None, metavar="MS",
                                help="residual, moments: average the change of voice over this many ms; longer "
                                     "keeps more of the words, less of the target voice (default: the recipe's "
                                     "model.conversion_smoothing_ms)")
        if verb == "traverse":
            parser.add_argument("--source", default=None,
                                help="condition of --input for a conditional model (default: from its FSDD name)")
            parser.add_argument("--condition", default=None,
                                help="decode under this condition, e.g. speaker=theo (default: --source's)")
        if verb == "interpolate":
            parser.add_argument("--source-a", dest="source_a", default=None,
                                help="condition of A for a conditional model (default: from its FSDD name)")
            parser.add_argument("--source-b", dest="source_b", default=None, help="condition of B (as --source-a)")
        if verb == "eval":
            parser.add_argument("--enhancement-clips", dest="enhancement_clips", type=at_least(0), default=0,
                                help="also score `vaekit enhance` on this many FSDD test recordings in white and "
                                     "babble noise at 0, 5, 10 dB: PESQ, STOI, SI-SDR, digit accuracy (0: none)")
            parser.add_argument("--classifier-epochs", dest="classifier_epochs", type=at_least(1), default=8,
                                help="epochs for the digit/speaker classifiers trained on real training mels")
            parser.add_argument("--eval-samples", dest="eval_samples", type=at_least(1), default=200,
                                help="conditional samples and conversions scored by the classifiers")
            parser.add_argument("--score-audio", dest="score_audio", action="store_true",
                                help="also classify reconstructions after Griffin-Lim audio and back (slower)")
            parser.add_argument("--pitch-utterances", dest="pitch_utterances", type=at_least(0), default=20,
                                help="utterances whose reconstructions' pitch is measured against the input's, "
                                     "both through Griffin-Lim (pitch_shift_cents, pitch_error_cents; 0: none)")

    # -- conditions -----------------------------------------------------------------------------
    def parse_condition(self, text: str, model: VAE) -> Tensor:
        """`speaker=jackson`, `digit=3`, `digit=3,speaker=theo` -> [1, n_conditions] (-1 = not given)."""
        return parse_condition_text(text, model.config["info"], "--condition")

    def condition_choices(self, model: VAE) -> list[str]:
        """`speaker=NAME`, `digit=3`, ...: every class of every condition the model takes."""
        return [f"{c['name']}={value}" for c in model.config["info"].get("conditions") or [] for value in c["classes"]]

    # -- artifacts ------------------------------------------------------------------------------
    def sample(self, model: VAE, n: int, condition: Tensor | None, out_dir: Path, temperature: float = 1.0,
               griffin_lim_iters: int | None = None, seconds: float | None = None, per_class: int | None = None,
               format: str = "files", **options) -> list[Path]:
        """n prior draws of `seconds` each as WAVs + one mel PNG; a CVAE cycles through the classes not given.

        per_class: K draws for each label class (other condition columns cycle); format='folder' writes
        out_dir/<label>/NNNNN.wav alone, a class-folder data set.
        """
        info = model.config["info"]
        out_dir = Path(out_dir)
        if format not in ("files", "folder"):
            raise PluginError(f"--format: expected files or folder, got {format!r}")
        if per_class is not None or format == "folder":
            conditions = per_class_grid(info, condition, per_class, n, model.device)
            n = conditions.shape[0]
        else:
            conditions = condition_grid(info, condition, n, model.device)
        out = sample_utterances(model, n, conditions, seconds_to_frames(info, seconds), temperature)
        samples = None if seconds is None else [seconds_to_samples(info, seconds)] * n
        if format == "folder":
            column = info["condition_on"].index("label")
            names = [f"{info['labels'][int(c[column])]}/{i:05d}" for i, c in enumerate(conditions.tolist())]
            return write_utterances(model, out, names, out_dir, None, griffin_lim_iters, samples)
        names = [f"sample_{i:03d}" + condition_suffix(info, conditions, i) for i in range(n)]
        return write_utterances(model, out, names, out_dir, "samples.png", griffin_lim_iters, samples)

    def reconstruct(self, model: VAE, inputs: list[str], condition: Tensor | None, out_dir: Path,
                    source: str | None = None, griffin_lim_iters: int | None = None, conversion: str | None = None,
                    conversion_smoothing_ms: float | None = None, **options) -> list[Path]:
        """Encode each file (with its source condition) and decode it, or convert it to the target condition
        (conversion: residual or decoded, see vaekit_speech.conversion).

        Frames that training's silence trimming would drop (data.trim_db below the loudest frame) keep the
        input's own log-mel: the model never learned silence, so it stays as it was. The WAVs are as long as
        their input and at its level (the level normalisation undone).
        """
        info = model.config["info"]
        out_dir = Path(out_dir)
        written = []
        for path in inputs:
            x = encode_inputs(model, [path], trim=False)  # the whole recording: output as long as the input
            samples, gains = input_samples(model, [path], trim=False), input_gains(model, [path], trim=False)
            c_source = source_condition(info, path, source, model.device)
            c_target = resolve_target(c_source, condition)
            if condition is None:
                with torch.no_grad():
                    z = model.encode(x, c_source).mode()
                    out = model.decode(z, c_source, lengths=x["mask"].sum(-1).round().long())
            else:
                out = convert(model, x, c_source, c_target, conversion or conversion_of(model),
                              smoothing_ms=conversion_smoothing_ms)
            out = keep_silence(model, x, out)
            stem = Path(path).stem
            suffix = "_recon" if condition is None else "_to" + condition_suffix(info, c_target, 0)
            # The input goes through the same mel + Griffin-Lim path, so the pair differs only by the model.
            written += write_utterances(model, x, [f"{stem}_input"], out_dir, None, griffin_lim_iters, samples, gains)
            written += write_utterances(model, out, [stem + suffix], out_dir, None, griffin_lim_iters, samples, gains)
            written.append(save_mel_png(out_dir / f"{stem}{suffix}.png",
                                        [to_db(model, x["mel"][0], x["mask"][0]), to_db(model, out["mel"][0],
                                                                                         out["mask"][0])],
                                        ["input", suffix.lstrip("_")], hop_seconds(info)))
        return written

    def interpolate(self, model: VAE, a: str, b: str, out_dir: Path, steps: int = 8, method: str = "linear",
                    source_a: str | None = None, source_b: str | None = None, griffin_lim_iters: int | None = None,
                    **options) -> list[Path]:
        """Decode `steps` points on the latent path from a to b, ends included (lengths interpolated too).

        The two latent sequences have their own lengths: each point resamples both to its own length in
        time (linear interpolation between latent steps), then mixes them (linear or slerp, the engine's).
        """
        weights = path_weights(steps, model.device)
        info = model.config["info"]
        x = encode_inputs(model, [a, b])
        c = None
        if info["conditions"]:
            c = torch.cat([source_condition(info, a, source_a, model.device),
                           source_condition(info, b, source_b, model.device)])
        with torch.no_grad():
            mode = model.encode(x, c).mode()
            length = x["mask"].sum(-1).round().long()
            reduction, first = model.decoder.reduction, model.decoder.utterance_steps
            ends = [mode[i, first: latent_steps(model, int(length[i]))] for i in range(2)]  # [T'_i, D] each
            lengths = ((1 - weights) * length[0] + weights * length[1]).round().long()
            n_steps = -(-lengths // reduction)
            path = torch.zeros(steps, first + int(n_steps.max()), mode.shape[-1], device=model.device)
            for i, (w, s) in enumerate(zip(weights.tolist(), n_steps.tolist(), strict=True)):
                point_a = torch.cat([mode[0, :first], resample_steps(ends[0], s)])  # utterance latent, then time
                point_b = torch.cat([mode[1, :first], resample_steps(ends[1], s)])
                path[i, : first + s] = mix(point_a, point_b, w, method)
            # A condition is a class, not a point on a line: each half of the path keeps its end's class.
            c_path = None if c is None else c[(weights >= 0.5).long()]
            out = model.decode(path, c_path, lengths=lengths)
        names = [f"interp_{i:02d}" for i in range(steps)]
        ends = torch.tensor(input_samples(model, [a, b]), dtype=torch.float64, device=weights.device)
        samples = ((1 - weights) * ends[0] + weights * ends[1]).round().long().tolist()  # as the frames
        written = write_utterances(model, out, names, Path(out_dir), "interpolation.png", griffin_lim_iters, samples)
        waves = [load_wave(p) for p in written if p.suffix == ".wav"]
        gap = torch.zeros(int(0.15 * info["sample_rate"]))
        from .audio import write_audio

        joined = torch.cat([torch.cat([w, gap]) for w in waves])
        written.append(write_audio(Path(out_dir) / "interpolation.wav", joined, info["sample_rate"]))
        return written

    @torch.no_grad()
    def traverse(self, model: VAE, out_dir: Path, input: str | None = None, dims: str | list[int] | None = None,
                 span: float = 3.0, steps: int = 9, source: str | None = None, condition: str | None = None,
                 seconds: float | None = None, griffin_lim_iters: int | None = None, **options) -> list[Path]:
        """unitDD_K.wav and traversal.png: each latent unit moved over [-span, span] at every latent step of a
        base utterance (the posterior mode of `input`, or the prior's mean `seconds` long), the others kept."""
        info = model.config["info"]
        units = parse_dims(dims, model.latent_dim)
        target = None if condition is None else parse_condition_text(condition, info, "--condition")
        if input is not None:
            x = encode_inputs(model, [input], trim=False)  # the whole recording, as reconstruct keeps it
            c_source = source_condition(info, input, source, model.device)
            c = resolve_target(c_source, target)  # decoded under --condition's columns, the source's for the rest
            frames = int(x["mask"].sum().round())
            samples = input_samples(model, [input], trim=False)[0]
            base = model.encode(x, c_source).mode()[0]
        else:
            c = condition_grid(info, target, 1, model.device)
            frames = seconds_to_frames(info, seconds)
            samples = None if seconds is None else seconds_to_samples(info, seconds)
            base = None  # the prior's mean, below
        length = latent_steps(model, frames)
        base = model.sample_latents(1, c, temperature=0.0, length=length)[0] if base is None else base[:length]
        z = traversal(base, units, span, steps, per_step=True)
        c_all = None if c is None else c.reshape(1, -1).expand(len(z), -1)
        out = model.decode(z, c_all, lengths=torch.full((len(z),), frames, device=model.device))
        names = [f"unit{unit:02d}_{k}" for unit in units for k in range(steps)]
        return write_utterances(model, out, names, Path(out_dir), "traversal.png", griffin_lim_iters,
                                None if samples is None else [samples] * len(names))

    def load_inputs(self, model: VAE, inputs: list[str]) -> dict:
        """Audio files -> a batch {"mel", "mask"} processed as the training data (`vaekit encode`)."""
        return encode_inputs(model, list(inputs))

    def commands(self) -> dict:
        """`vaekit enhance RUN noisy.wav ...` and `vaekit train-enhancer RUN` (vaekit_speech.enhance_cli)."""
        from . import enhance_cli  # its noise mixer and enhancers are only needed by these verbs

        return {"enhance": (enhance_cli.enhance_arguments, enhance_cli.run_enhance),
                "train-enhancer": (enhance_cli.train_enhancer_arguments, enhance_cli.run_train_enhancer)}

    def demo_verbs(self, model: VAE) -> list[str]:
        """enhance; not train-enhancer, which trains for minutes and writes into the run folder."""
        return ["enhance"]

    def eval_metrics(self, model: VAE, loader, summary: dict[str, float], enhancement_clips: int = 0,
                     **options) -> dict[str, float]:
        from .metrics import speech_metrics

        results = speech_metrics(model, loader, summary, **options)
        if enhancement_clips:
            from .enhance_eval import eval_enhancement  # pesq, pystoi, noisereduce: only for these figures

            results.update(eval_enhancement(model, enhancement_clips, **options))
        return results
