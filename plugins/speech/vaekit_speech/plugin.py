"""The speech plugin: data, model, and what people do with a trained model (WAVs + mel PNGs).

    vaekit train recipes/speech/fsdd_cvae.yaml
    vaekit sample runs/fsdd_cvae -n 10 --condition speaker=theo           # one per digit, as theo
    vaekit reconstruct runs/fsdd_cvae 3_george_7.wav --condition speaker=jackson   # voice conversion
    vaekit interpolate runs/fsdd 0_theo_1.wav 9_lucas_2.wav
    vaekit sample runs/fsdd_strings -n 4 --seconds 5 --condition speaker=theo
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import Tensor

from vaekit import VAE, DataBundle, Plugin, PluginError
from vaekit.plugin_api import DemoKinds, SubsetConfig, at_least, mix, parse_dims, path_weights, traversal

from .conversion import CONVERSIONS, conversion_of, convert
from .data import (
    FSDD_NAME,
    SpeechDataConfig,
    Utterance,
    build_splits,
    collate,
    frontend_from,
    note_cut,
    pad_mels,
    utterance_gain,
    utterance_mel,
    utterance_samples,
    was_cut,
)
from .features import MelFrontend, MelStats, hop_seconds, save_mel_png, silent_frames
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


# -- helpers shared by the artifact writers and the metrics ---------------------------------------

def seconds_to_frames(info: dict, seconds: float | None) -> int:
    """Mel frames of `seconds` of audio; None gives the training utterances' median length."""
    if seconds is not None and not seconds > 0:
        raise PluginError(f"--seconds: expected a positive number of seconds, got {seconds}")
    if seconds is None:
        return int(info.get("median_frames", 64))
    return 1 + int(seconds * info["sample_rate"]) // info["data"]["hop_length"]


def seconds_to_samples(info: dict, seconds: float) -> int:
    """Samples of `seconds` of audio at the model's rate (the WAV's length; its frames: seconds_to_frames)."""
    return int(seconds * info["sample_rate"])


def latent_steps(model: VAE, frames: int) -> int:
    """Latent steps that decode to `frames` mel frames: the utterance latent's, then one per stretch of time."""
    return model.decoder.utterance_steps - (-frames // model.decoder.reduction)


@torch.no_grad()
def sample_utterances(model: VAE, n: int, conditions: Tensor | None, frames: int, temperature: float = 1.0) -> dict:
    """n prior draws of `frames` frames each, decoded: {"mel": [n, F, frames], "mask": [n, frames]}."""
    z = model.sample_latents(n, conditions, temperature, length=latent_steps(model, frames))
    return model.decode(z, conditions, lengths=torch.full((n,), frames, device=model.device))


def resample_steps(z: Tensor, steps: int) -> Tensor:
    """A latent sequence [T', D] stretched or squeezed to `steps` steps by linear interpolation in time."""
    if z.shape[0] == steps:
        return z
    if z.shape[0] == 1:
        return z.expand(steps, -1)
    return torch.nn.functional.interpolate(z.T[None], size=steps, mode="linear", align_corners=True)[0].T


def info_frontend(info: dict) -> MelFrontend:
    return frontend_from(info["data"])


def to_db(model: VAE, mel: Tensor, mask: Tensor) -> Tensor:
    """One normalised mel [F, T] cut to its mask's length, back in dB."""
    length = max(1, int(mask.sum().round()))
    return MelStats.from_info(model.config["info"]).denormalize(mel[:, :length].float().cpu())


def write_utterances(model: VAE, batch: dict, names: list[str], out_dir: Path, png_name: str | None,
                     griffin_lim_iters: int | None, samples: list[int] | None = None,
                     gains: list[float] | None = None) -> list[Path]:
    """Each normalised mel of batch {"mel", "mask"} as NAME.wav (Griffin-Lim), plus a PNG of all of them.

    samples: each WAV's length in samples (its input's); default (frames - 1) * hop_length. gains: the factor
    level normalisation multiplied each input by; the WAV is divided by it, back to the input's level.
    """
    from .audio import write_audio

    info = model.config["info"]
    frontend = info_frontend(info)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, mels = [], []
    for i, name in enumerate(names):
        mel_db = to_db(model, batch["mel"][i], batch["mask"][i])
        mels.append(mel_db)
        wave = frontend.to_audio(mel_db, n_iter=griffin_lim_iters, samples=None if samples is None else samples[i])
        if gains is not None:
            wave = wave / gains[i]
        written.append(write_audio(out_dir / f"{name}.wav", wave, info["sample_rate"]))
    if png_name:
        written.append(save_mel_png(out_dir / png_name, mels, names, hop_seconds(info)))
    return written


def load_wave(path: Path) -> Tensor:
    import soundfile as sf

    data, _ = sf.read(str(path), dtype="float32")
    return torch.from_numpy(data)


def encode_inputs(model: VAE, paths: list[str], trim: bool = True) -> dict:
    """Audio files -> a model-ready batch {"mel", "mask"} with the training data's processing.

    trim=False keeps leading and trailing silence, so a reconstruction is as long as its input file.
    """
    info = model.config["info"]
    data = info["data"] if trim else {**info["data"], "trim_db": None}
    mels, cut = [], []
    for path in paths:
        utt = Utterance(Path(path).stem, Path(path))
        mels.append(MelStats.from_info(info).normalize(utterance_mel(utt, data)))
        if was_cut(utt, data):
            cut.append(str(path))
    note_cut(cut, data)
    batch = pad_mels(mels)
    return {key: value.to(model.device) for key, value in batch.items()}


def read_as_encoded(model: VAE, paths: list[str], trim: bool = True):
    """Each file as encode_inputs reads it, with the data settings it was read with: (utterance, data) pairs."""
    info = model.config["info"]
    data = info["data"] if trim else {**info["data"], "trim_db": None}
    for path in paths:
        utt = Utterance(Path(path).stem, Path(path))
        utterance_mel(utt, data)  # cached: computed once with encode_inputs
        yield utt, data


def input_samples(model: VAE, paths: list[str], trim: bool = True) -> list[int]:
    """Each file's length in samples at the model's rate, processed as encode_inputs processes it."""
    return [utterance_samples(utt, data) for utt, data in read_as_encoded(model, paths, trim)]


def input_gains(model: VAE, paths: list[str], trim: bool = True) -> list[float]:
    """The factor the training data's level normalisation multiplied each file by (as encode_inputs reads it)."""
    return [utterance_gain(utt, data) for utt, data in read_as_encoded(model, paths, trim)]


def keep_silence(model: VAE, x: dict, out: dict) -> dict:
    """out {"mel", "mask"} with x's own log-mel in x's silent frames: those more than data.trim_db below its
    loudest frame, which training trims away (nothing changes when the recipe does not trim)."""
    trim_db = model.config["info"]["data"].get("trim_db")
    if trim_db is None:
        return out
    mel = out["mel"].clone()
    for i in range(mel.shape[0]):
        length = max(1, int(x["mask"][i].sum().round()))
        silent = silent_frames(to_db(model, x["mel"][i], x["mask"][i]), trim_db).to(mel.device)
        mel[i, :, :length] = torch.where(silent, x["mel"][i, :, :length], mel[i, :, :length])
    return {**out, "mel": mel}


def parse_condition_text(text: str, info: dict, where: str) -> Tensor:
    """`key=value[,key=value]` -> [1, n_conditions] class indices, -1 for columns not named."""
    conditions = info.get("conditions") or []
    if not conditions:
        raise PluginError(f"{where} {text!r}: this model is unconditional (train with data.condition_on)")
    values = [-1] * len(conditions)
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            column = next((i for i, cond in enumerate(conditions) if key in (cond["name"], cond["key"])), None)
            if column is None:
                names = ", ".join(cond["name"] for cond in conditions)
                raise PluginError(f"{where} {text!r}: unknown condition {key!r}; this model takes {names}")
        else:  # a bare value names the one column that has such a class
            key, value = None, part
            column = next((i for i, cond in enumerate(conditions) if value in cond["classes"]), None)
            if column is None:
                raise PluginError(f"{where} {text!r}: {value!r} is no class of this model; write KEY=VALUE, "
                                  f"e.g. {conditions[0]['name']}={conditions[0]['classes'][0]}")
        if values[column] >= 0:  # `speaker=a,speaker=b` must not silently mean b
            raise PluginError(f"{where} {text!r}: {conditions[column]['name']} is given twice; give each "
                              "condition once")
        classes = conditions[column]["classes"]
        if value not in classes:
            raise PluginError(f"{where} {text!r}: {conditions[column]['name']} must be one of "
                              f"{', '.join(classes)}; got {value!r}")
        values[column] = classes.index(value)
    return torch.tensor([values])


def fsdd_condition_text(path: str | Path, info: dict) -> str | None:
    """`digit=3,speaker=george` from an FSDD file name, or None when the name does not follow the pattern."""
    match = FSDD_NAME.match(Path(path).stem)
    if not match:
        return None
    parsed = {"label": match.group(1), "speaker": match.group(2)}
    return ",".join(f"{cond['key']}={parsed[cond['key']]}" for cond in info.get("conditions", []))


def source_condition(info: dict, path: str | Path, source: str | None, device) -> Tensor | None:
    """The condition an input was recorded under: --source, else parsed from its FSDD file name."""
    if not info.get("conditions"):
        return None
    text = source or fsdd_condition_text(path, info)
    if text is None:
        names = ",".join(f"{cond['name']}=..." for cond in info["conditions"])
        raise PluginError(f"{path}: the model is conditional; give the input's condition with --source {names} "
                          "(interpolate: --source-a / --source-b), or use an FSDD name {digit}_{speaker}_{index}.wav")
    condition = parse_condition_text(text, info, "--source" if source else str(path))
    missing = [cond["name"] for cond, v in zip(info["conditions"], condition[0].tolist(), strict=True) if v < 0]
    if missing:
        raise PluginError(f"{path}: source condition {text!r} lacks {', '.join(missing)}")
    return condition.to(device)


def resolve_target(source: Tensor | None, target: Tensor | None) -> Tensor | None:
    """The decoding condition: the target's given columns, the source's for the rest (-1)."""
    if target is None or source is None:
        return source
    target = target.to(source.device).reshape(1, -1)
    return torch.where(target >= 0, target, source)


def condition_grid(info: dict, condition: Tensor | None, n: int, device) -> Tensor | None:
    """n conditions: given columns fixed, the others cycling through the product of their classes."""
    conditions = info.get("conditions") or []
    if not conditions:
        return None
    given = [-1] * len(conditions) if condition is None else condition.reshape(-1).tolist()
    free = [range(len(cond["classes"])) if v < 0 else [v] for cond, v in zip(conditions, given, strict=True)]
    # Earlier columns (the label) vary fastest, so the first n samples cover every digit.
    combos = [tuple(reversed(combo)) for combo in itertools.product(*reversed(free))]
    rows = [combos[i % len(combos)] for i in range(n)]
    return torch.tensor(rows, device=device)


def per_class_grid(info: dict, condition: Tensor | None, per_class: int | None, n: int, device) -> Tensor:
    """Conditions of K = per_class draws for each label class in turn (all n draws when per_class is None), the
    other columns cycling as condition_grid's; a model without a label condition is a one-line error."""
    if "label" not in (info.get("condition_on") or []):
        raise PluginError(f"--per-class/--format folder: this speech model is not conditioned on a "
                          f"{info.get('label_name', 'label')} (data.condition_on has no label); "
                          "use -n for the number of samples")
    column = info["condition_on"].index("label")
    given = condition.reshape(-1).clone() if condition is not None else torch.full((len(info["condition_on"]),), -1)
    if given[column] >= 0:
        classes = [int(given[column])]
    else:
        classes = list(range(len(info["labels"])))
    if per_class is None:  # -n draws, cycling through the classes
        return condition_grid(info, given, n, device)
    rows = []
    for label in classes:
        given[column] = label
        rows.append(condition_grid(info, given, per_class, device))
    return torch.cat(rows)


def condition_suffix(info: dict, conditions: Tensor | None, i: int) -> str:
    """`_digit-3_speaker-theo` for row i (empty for an unconditional model)."""
    if conditions is None:
        return ""
    return "".join(f"_{cond['name']}-{cond['classes'][int(v)]}"
                   for cond, v in zip(info["conditions"], conditions[i].tolist(), strict=True))
