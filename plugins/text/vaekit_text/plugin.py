"""TextPlugin: sentence VAEs in vaekit — data, models, and what people do with them (all written as .txt).

    vaekit train recipes/text/ptb_lstm.yaml
    vaekit sample runs/ptb_lstm -n 10 --strategy sample --top-p 0.9
    vaekit sample runs/ptb_lstm --around "the company said it expects" -n 10
    vaekit reconstruct runs/ptb_lstm "the market closed higher" sentences.txt
    vaekit interpolate runs/ptb_lstm "he said it was n't" "the stock fell N N" --steps 7
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

import vaekit
from vaekit.plugin_api import (
    DemoKinds,
    SubsetConfig,
    at_least,
    atomic_write_text,
    parse_dims,
    pick,
    quote,
    to_device,
    traversal,
    traversal_values,
)

from .config import TextDataConfig, TextModelConfig
from .data import Collate, SentenceDataset, encode_sentences, make_batch, read_lines, read_sentences
from .decoding import BEAM_SIZE, LENGTH_PENALTY, real_tokens
from .labelled import is_labelled, parse_label, read_label_splits
from .scorers import DEFAULT_CACHE
from .tokenizers import UNKNOWN_WORDS_WARNING, Tokenizer, build_tokenizer, has_tokenizer, load_tokenizer
from .transfer import transfer_report

log = logging.getLogger("vaekit.text")

# A posterior has collapsed when it carries (almost) nothing about the sentence: Bowman et al. report KL
# near 0 for an un-annealed LSTM VAE, and an encoder whose means do not vary with x has no active units.
COLLAPSE_KL_NATS = 0.5
COLLAPSE_MAX_ACTIVE_UNITS = 1


def _decoding_arguments(parser) -> None:
    parser.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="greedy",
                        help="next-token choice: greedy (argmax), sample, or beam search (default: greedy)")
    parser.add_argument("--beam-size", dest="beam_size", type=int, default=None,
                        help=f"partial sentences --strategy beam keeps (default {BEAM_SIZE})")
    parser.add_argument("--length-penalty", dest="length_penalty", type=float, default=None,
                        help="--strategy beam ranks sentences by log p / length ** this (default "
                             f"{LENGTH_PENALTY:g}: nats per token; 0: the whole sentence's log p)")
    # The sampling options default to None, not to their values, so that one given beside another strategy
    # (which would ignore it) can be told from one left alone
    parser.add_argument("--token-temperature", dest="token_temperature", type=float, default=None,
                        help="softmax temperature of --strategy sample (default 1); the engine's --temperature "
                             "scales the latents' spread, as in every plugin")
    parser.add_argument("--top-k", dest="top_k", type=int, default=None,
                        help="--strategy sample draws among the k best tokens (default 0: all)")
    parser.add_argument("--top-p", dest="top_p", type=float, default=None,
                        help="--strategy sample's nucleus mass (default 1: off)")
    parser.add_argument("--max-length", dest="max_length", type=int, default=None,
                        help="most tokens per sentence (default: the recipe's data.max_length)")


def _decoding_options(options: dict) -> dict:
    """The decoding options that were given, checked (a bad value names its CLI option); --token-temperature is
    decoding's temperature."""
    chosen = {key: options[key] for key in ("strategy", "token_temperature", "top_k", "top_p", "max_length",
                                            "beam_size", "length_penalty") if options.get(key) is not None}
    checks = {"strategy": (lambda v: v in ("greedy", "sample", "beam"), "--strategy: expected greedy, sample or beam"),
              "token_temperature": (lambda v: v > 0, "--token-temperature: expected a number > 0"),
              "top_k": (lambda v: v >= 0, "--top-k: expected 0 (off) or more"),
              "top_p": (lambda v: 0 < v <= 1, "--top-p: expected a probability in (0, 1]"),
              "max_length": (lambda v: v >= 1, "--max-length: expected at least 1 token"),
              "beam_size": (lambda v: v >= 1, "--beam-size: expected at least 1"),
              "length_penalty": (lambda v: v >= 0, "--length-penalty: expected a number >= 0")}
    for key, value in chosen.items():
        ok, message = checks[key]
        if not ok(value):
            raise ValueError(f"{message}, got {value!r}")
    for keys, strategy in ((("beam_size", "length_penalty"), "beam"),
                           (("token_temperature", "top_k", "top_p"), "sample")):
        for key in keys:
            if key in chosen and chosen.get("strategy", "greedy") != strategy:
                raise ValueError(f"--{key.replace('_', '-')}: only with --strategy {strategy}")
    if "token_temperature" in chosen:
        chosen["temperature"] = chosen.pop("token_temperature")
    return chosen


def _per_class_count(model: vaekit.VAE, per_class: int | None, n: int, condition: Tensor | None) -> int:
    """Sentences `vaekit sample --per-class K` / `--format tsv` decodes: K per label (or under --condition's one);
    an unconditional model has no labels to write, a one-line error."""
    info = model.config.get("info", {})
    if not info.get("condition_on"):
        raise vaekit.PluginError("--per-class/--format tsv: this text model is unconditional (no labels); train it "
                                 "on a labelled corpus with data.condition_on, or use -n for the number of sentences")
    if per_class is None:
        return n
    return per_class * (1 if condition is not None else len(info["labels"]))


def _write_lines(path: Path, lines: list[str], echo: bool = False) -> Path:
    """Write lines to path (UTF-8); with echo also print them, as the CLI verbs do."""
    atomic_write_text(path, "\n".join(lines) + "\n")  # never through a link planted in the run folder
    if echo:
        print("\n".join(lines))
    return path


INPUT_RULE = ("an input that names an existing file is read as one sentence per line; anything else is a "
              "sentence. --text: every input is a sentence; --file: every input is a file")


def _is_file(item: str) -> bool:
    """Whether item names an existing file; a sentence too long to be a file name is not one."""
    try:
        return Path(item).is_file()
    except (OSError, ValueError):  # ENAMETOOLONG for a sentence > 255 bytes, NUL bytes
        return False


# One word with a slash, or with a dot and a short extension (notes.txt, data/test): what a file name looks like
PATH_LIKE = re.compile(r"\S*[/\\]\S*|\S+\.[A-Za-z][A-Za-z0-9]{0,4}")


def _utf8(item: str) -> str:
    """item, if its bytes are UTF-8; an argument in another encoding (caf\\xe9 in Latin-1) is a one-line error."""
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(item)  # the bytes the shell passed (Python keeps undecodable ones as surrogates)
        try:
            raw.decode("utf-8")
            start = 0
        except UnicodeDecodeError as exc:
            start = exc.start
        raise ValueError(f"{quote(raw)[1:]}: not valid UTF-8 (byte {raw[start]:#04x} at byte {start + 1}); give "
                         "sentences as UTF-8 text (e.g. convert them with iconv -t UTF-8)") from None
    return item


def _read_input_file(item: str) -> list[str]:
    """The non-empty lines of an input file, with one-line errors naming it."""
    path = Path(item)
    try:
        if not path.is_file():
            raise ValueError(f"{quote(item)}: no such file (--file reads one sentence per line; use --text for a "
                             "sentence)")
        return read_lines(path)
    except OSError as exc:
        raise ValueError(f"{quote(item)}: cannot be read as a file ({exc.strerror}); use --text for a "
                         "sentence") from None


def _input_arguments(parser) -> None:
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--text", dest="inputs_are", action="store_const", const="text",
                       help="every input is a sentence, even one that names a file")
    kinds.add_argument("--file", dest="inputs_are", action="store_const", const="file",
                       help="every input is a file with one sentence per line")
    parser.epilog = f"Inputs: {INPUT_RULE}."


def _report_unknown(rates: dict[str, float], paths: dict[str, str], tokenizer: Tokenizer) -> None:
    """Say each split's share of tokens written <unk> for text the tokenizer lacks (one note line, if any is), and
    warn of a split where it exceeds UNKNOWN_WORDS_WARNING: a model scored there cannot write those words."""
    if not any(rates.values()):
        return
    unit = "words" if tokenizer.kind == "word" else "tokens"
    log.warning("%s the tokenizer writes <unk> (text outside its vocabulary): %s", unit,
                ", ".join(f"{name} {100 * rate:.2f}%" for name, rate in rates.items()))
    if tokenizer.kind == "word":
        cure = ("raise data.vocab_size, lower data.min_freq or use data.tokenizer=sentencepiece" if rates.get("train")
                else "words the training split lacks: data.tokenizer=sentencepiece spells them in pieces")
        if tokenizer.split == "whitespace":
            cure += ("; data.word_split=whitespace keeps punctuation in words (\"moon!\" is not \"moon\"): "
                     "data.word_split=punctuation splits it off")
    else:
        cure = "raise data.vocab_size (sentencepiece: data.spm_character_coverage=1.0 keeps every character)"
    for name, rate in rates.items():
        if rate > UNKNOWN_WORDS_WARNING:
            log.warning("%s split (%s): %.1f%% of its %s fall outside the vocabulary (data.vocab_size=%d, fitted on "
                        "the training split) and become <unk>; %s", name, paths[name], 100 * rate, unit,
                        tokenizer.vocab_size, cure)


class TextPlugin(vaekit.Plugin):
    """Sentence VAEs: LSTM/GRU (Bowman et al. 2016) or Transformer (Optimus) with word/SentencePiece/HF tokens."""

    name = "text"
    description = "sentence VAEs (LSTM/GRU, Transformer) with word, SentencePiece or Hugging Face tokenizers"
    data_config = TextDataConfig
    model_config = TextModelConfig
    takes_subset = True  # the tokenizer is fitted on the training sentences the subset keeps
    demo_kinds = DemoKinds(input="text", output="text")

    # -- data and model --------------------------------------------------------------------------
    def build_data(self, data: TextDataConfig, *, seed: int, assets: Path,
                   subset: SubsetConfig | None = None) -> vaekit.DataBundle:
        """Read the splits (cut to the recipe's subset), fit (or reuse) the tokenizer on train, tokenise; info holds
        the vocabulary facts."""
        assets = Path(assets)
        assets.mkdir(parents=True, exist_ok=True)
        splits = {"train": data.train, "val": data.val, "test": data.test}
        labels, label_ids = read_label_splits(data, splits) if is_labelled(data) else ([], {})
        sentences = {name: [s for _, s in label_ids[name]] if name in label_ids else
                     read_sentences(path, data.format, data.text_field) if path else None
                     for name, path in splits.items()}
        for name, found in sentences.items():
            if found is not None:
                kept = pick(list(range(len(found))), subset, seed, name)
                sentences[name] = found = [found[i] for i in kept]
                if name in label_ids:
                    label_ids[name] = [labels.index(label_ids[name][i][0]) for i in kept]
                if not found:
                    raise ValueError(f"{splits[name]}: no sentences (every line is empty)")
        # A resumed run (or `vaekit eval`, which passes a checkpoint's assets) reuses the saved tokenizer, so ids
        # never shift under a checkpoint and its folder is never rewritten.
        if has_tokenizer(assets):
            tokenizer = load_tokenizer(assets)
            if data.tokenizer != "hf" and tokenizer.vocab_size < data.vocab_size:  # the first run said so already
                data.vocab_size = tokenizer.vocab_size  # so --resume with the user's recipe matches recipe.yaml
        else:
            tokenizer = build_tokenizer(data, sentences["train"], seed)
            tokenizer.save(assets)
        datasets, reports, unknown = {}, {}, {}
        for name, found in sentences.items():
            if found is None:
                datasets[name] = None
                continue
            encoded = encode_sentences(found, tokenizer, data.max_length, data.long_lines)
            report = encoded.report
            if not encoded.tokens:
                raise ValueError(f"{splits[name]}: every sentence is longer than data.max_length={data.max_length}")
            ids = [label_ids[name][i] for i in encoded.kept] if name in label_ids and data.condition_on else None
            datasets[name] = SentenceDataset(encoded.tokens, encoded.words, encoded.sentences, encoded.unknown, ids)
            reports[name] = vars(report)
            unknown[name] = encoded.unknown_rate
            if report.filtered or report.truncated:
                log.warning("%s split (%s): %d sentences kept, %d longer than %d tokens filtered, %d truncated",
                            name, splits[name], report.kept, report.filtered, data.max_length, report.truncated)
        _report_unknown(unknown, splits, tokenizer)
        info = {"tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size, "pad_id": tokenizer.pad_id,
                "unk_id": tokenizer.unk_id, "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id,
                "max_length": data.max_length, "lengths": reports, "unk_rates": unknown}
        if data.condition_on:  # what conditioning, parse_condition and the transfer scores need
            info.update(condition_on=data.condition_on, labels=labels, references=data.references,
                        labelled_train={"path": data.train, "format": data.format, "text_field": data.text_field},
                        labelled_test=data.test)
        return vaekit.DataBundle(datasets["train"], datasets["val"], datasets["test"], info,
                                 Collate(tokenizer.pad_id), lengths=[len(t) for t in datasets["train"].tokens])

    def build_model(self, model: TextModelConfig, info: dict, *, assets: Path) -> vaekit.VAE:
        """rnn or transformer VAE for info's vocabulary; the tokenizer from assets rides on the decoder."""
        from .rnn import RNNDecoder, RNNEncoder, StandardNormalEncoder

        assets = Path(assets)
        specials = {key: info[key] for key in ("pad_id", "unk_id", "bos_id", "eos_id")}
        vocab, max_length = info["vocab_size"], info["max_length"]
        tokenizer = load_tokenizer(assets) if has_tokenizer(assets) else None
        if tokenizer is not None and tokenizer.vocab_size != vocab:
            raise ValueError(f"{assets}: the saved tokenizer has {tokenizer.vocab_size} entries but the model "
                             f"was built for {vocab}")
        num_labels = len(info["labels"]) if info.get("condition_on") else None
        if num_labels and model.arch != "rnn":
            raise ValueError(f"data.condition_on: a text CVAE needs model.arch=rnn, got {model.arch!r}")
        if model.arch == "rnn":
            encoder = RNNEncoder(vocab, specials["pad_id"], model)
            decoder = RNNDecoder(vocab, specials, max_length, model, num_labels)
            if model.share_embeddings:
                encoder.embed = decoder.embed
        else:
            from .transformer import TransformerDecoder, TransformerEncoder

            encoder = TransformerEncoder(vocab, specials["pad_id"], max_length, model, assets)
            decoder = TransformerDecoder(vocab, specials, max_length, model)
        if not model.use_latent:
            encoder = StandardNormalEncoder(model.latent_dim)
        decoder.tokenizer = tokenizer
        return vaekit.VAE(encoder, decoder, model.latent_dim)

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def tokenizer(model: vaekit.VAE) -> Tokenizer:
        tok = getattr(model.decoder, "tokenizer", None)
        if tok is None:
            assets = model.config.get("assets_dir")
            if not assets:
                raise vaekit.PluginError("this text model has no tokenizer (build it with assets holding one)")
            tok = model.decoder.tokenizer = load_tokenizer(assets)
        return tok

    def decode_text(self, model: vaekit.VAE, x: dict) -> list[str]:
        """Generated or data batches {"tokens", "lengths"} -> sentences (special tokens dropped)."""
        tok = self.tokenizer(model)
        rows = zip(x["tokens"].cpu(), x["lengths"].cpu(), strict=True)
        return [tok.decode(row[: int(n)].tolist()) for row, n in rows]

    def encode_text(self, model: vaekit.VAE, sentences: list[str]) -> dict:
        """Sentences -> a batch x on the model's device."""
        return to_device(make_batch(sentences, self.tokenizer(model), model.decoder.max_length), model.device)

    @torch.no_grad()
    def encode_sentences(self, model: vaekit.VAE, sentences: list[str]) -> Tensor:
        """Sentences -> their posterior means [N, latent_dim] (the codes `vaekit encode` writes)."""
        model.eval()
        return model.posterior(self.encode_text(model, list(sentences))).mean

    @torch.no_grad()
    def decode_latents(self, model: vaekit.VAE, z: Tensor, **options) -> list[str]:
        """Latents [N, latent_dim] (or one [latent_dim]) -> sentences; options as `vaekit sample` (strategy, top_p)."""
        model.eval()
        z = z.to(model.device)
        return self.decode_text(model, model.decode(z.unsqueeze(0) if z.dim() == 1 else z, None,
                                                    **_decoding_options(options)))

    def load_inputs(self, model: vaekit.VAE, inputs: list[str]) -> dict:
        """Sentences and .txt files (one sentence per line) -> a batch x (`vaekit encode`)."""
        return self.encode_text(model, self._inputs(inputs))

    @staticmethod
    def _inputs(inputs: list[str], inputs_are: str | None = None) -> list[str]:
        """Sentences from the CLI inputs: see INPUT_RULE (--text: all sentences, --file: all files)."""
        sentences, empty_files = [], []
        for item in inputs:
            if inputs_are == "file" or (inputs_are is None and _is_file(item)):
                lines = _read_input_file(item)
                sentences.extend(lines)
                if not lines:
                    empty_files.append(quote(item))
            elif item.strip():
                if inputs_are is None and PATH_LIKE.fullmatch(item.strip()):
                    log.warning("%s: no such file, so it is read as a sentence (--text: every input is a sentence; "
                                "--file: every input must be a file)", quote(item))
                sentences.append(_utf8(item).strip())
        if not sentences:
            where = f": {', '.join(empty_files)} holds no sentence (every line is empty)" if empty_files else ""
            raise ValueError(f"no sentences given{where}; pass sentences, or files with one sentence per line")
        if empty_files:
            log.warning("%s: holds no sentence (every line is empty)", ", ".join(empty_files))
        return sentences

    def _one_sentence(self, item: str, inputs_are: str | None) -> str:
        """The sentence an input gives (a file must hold exactly one line)."""
        lines = self._inputs([item], inputs_are)
        if len(lines) != 1:
            raise ValueError(f"{quote(item)}: expected one sentence, the file holds {len(lines)}")
        return lines[0]

    # -- CLI verbs ---------------------------------------------------------------------------------
    def add_arguments(self, verb: str, parser) -> None:
        if verb in ("sample", "reconstruct", "interpolate", "traverse"):
            _decoding_arguments(parser)
            # The CLI prints the sentences by default; the trainer's calls pass no options and stay quiet.
            parser.add_argument("--no-print", dest="echo", action="store_false",
                                help="only write the .txt file, do not print the sentences")
        if verb == "sample":
            parser.add_argument("--around", default=None,
                                help="paraphrase: sample latents from this sentence's posterior instead of the prior")
            parser.add_argument("--per-class", dest="per_class", type=at_least(1), default=None, metavar="K",
                                help="a text CVAE: K sentences per label (of --condition's label alone when given)")
            parser.add_argument("--format", choices=["lines", "tsv"], default="lines",
                                help="lines: samples.txt; tsv: samples.tsv of label<TAB>sentence lines, a labelled "
                                     "corpus data.train reads (a text CVAE)")
        if verb in ("reconstruct", "interpolate", "traverse"):
            _input_arguments(parser)
        if verb == "reconstruct":
            parser.add_argument("--sample-latent", dest="sample_latent", action="store_true",
                                help="decode a posterior sample instead of its mean")
            parser.add_argument("--source", default=None,
                                help="a model conditioned on a label: the inputs' own label, NAME=VALUE (optional: "
                                     "the encoder reads no label; it is checked and written beside each input)")
        if verb == "eval":
            parser.add_argument("--recon-examples", dest="recon_examples", type=int, default=None,
                                help="sentences decoded for reconstruction BLEU-4 / token accuracy "
                                     "(default: all evaluated; 0: skip)")
            parser.add_argument("--recon-beam-size", dest="recon_beam_size", type=int, default=0,
                                help="also decode the reconstructions by beam search of this size: recon_*_beam "
                                     "(default 0: greedy only)")
            parser.add_argument("--transfer-examples", dest="transfer_examples", type=int, default=None,
                                help="a model conditioned on a label (data.condition_on): test sentences transferred "
                                     "to another label and scored (default: all; 0: skip)")
            parser.add_argument("--scorer-cache", dest="scorer_cache", default=DEFAULT_CACHE,
                                help="folder of the cached label classifier and language model that score transfers "
                                     f"(default {DEFAULT_CACHE})")

    def parse_condition(self, text: str, model: vaekit.VAE) -> Tensor:
        """--condition NAME=VALUE (or VALUE) of a text CVAE (data.condition_on) -> the label's id [1, 1]."""
        return torch.tensor([[parse_label(text, model.config.get("info", {}))]], device=model.device)

    @staticmethod
    def _labels_for(model: vaekit.VAE, n: int, condition: Tensor | None, per_class: int | None = None
                    ) -> tuple[Tensor | None, list[str]]:
        """A CVAE's labels [n, 1] for n decodes (the condition's, or each label in turn: per_class of each, else
        cycling) and their NAME=VALUE texts; (None, []) for an unconditional model."""
        info = model.config.get("info", {})
        if not info.get("condition_on"):
            return None, []
        if condition is not None:
            ids = condition.reshape(-1)[:1].expand(n)
        elif per_class is not None:
            ids = torch.arange(len(info["labels"]), device=model.device).repeat_interleave(per_class)
        else:
            ids = torch.arange(n, device=model.device) % len(info["labels"])
        return ids.reshape(n, 1).to(model.device), [f"{info['condition_on']}={info['labels'][i]}" for i in ids]

    def _first_label(self, model: vaekit.VAE, n: int) -> tuple[Tensor | None, list[str]]:
        """For verbs without --condition (interpolate, traverse): a CVAE decodes under its first label."""
        return self._labels_for(model, n, torch.zeros(1, 1, dtype=torch.long, device=model.device))

    @torch.no_grad()
    def sample(self, model: vaekit.VAE, n: int, condition: Tensor | None, out_dir: Path, around: str | None = None,
               echo: bool = False, temperature: float = 1.0, per_class: int | None = None, format: str = "lines",
               **options) -> list[Path]:
        """n sentences from the prior (or around a sentence's posterior) -> samples.txt / around.txt; temperature
        scales the latents' spread (the prior's, or the posterior's with around). A CVAE writes them under the
        condition, or under each label in turn (each line then starts with its NAME=VALUE); per_class K: K under
        each label; format='tsv': samples.tsv of label<TAB>sentence lines instead."""
        model.eval()
        if per_class is not None or format == "tsv":
            n = _per_class_count(model, per_class, n, condition)
        labels, names = self._labels_for(model, n, condition, per_class)
        if format == "tsv":
            info = model.config["info"]
            sentences = self.decode_text(model, model.decode(model.sample_latents(n, None, temperature), labels,
                                                             **_decoding_options(options)))
            rows = [f"{info['labels'][int(i)]}\t{s}" for i, s in zip(labels.reshape(-1), sentences, strict=True)]
            return [_write_lines(Path(out_dir) / "samples.tsv", rows, echo)]
        if around is not None:
            posterior = model.posterior(self.encode_text(model, [_utf8(around)]))
            z = posterior.mean + temperature * posterior.std * torch.randn(n, posterior.dim, device=model.device)
        else:
            z = model.sample_latents(n, None, temperature)
        sentences = self.decode_text(model, model.decode(z, labels, **_decoding_options(options)))
        if labels is not None and condition is None:
            sentences = [f"{name}: {sentence}" for name, sentence in zip(names, sentences, strict=True)]
        out_dir = Path(out_dir)
        if around is not None:
            return [_write_lines(out_dir / "around.txt", sentences, echo)]
        return [_write_lines(out_dir / "samples.txt", sentences, echo)]

    @torch.no_grad()
    def reconstruct(self, model: vaekit.VAE, inputs: list[str], condition: Tensor | None, out_dir: Path,
                    sample_latent: bool = False, echo: bool = False, inputs_are: str | None = None,
                    source: str | None = None, **options) -> list[Path]:
        """Encode then decode each sentence; reconstructions.txt pairs input and output. A CVAE on a label decodes
        under --condition (a transfer when it differs from the inputs' --source label)."""
        model.eval()
        sentences = self._inputs(inputs, inputs_are)
        info = model.config.get("info", {})
        if info.get("condition_on") and condition is None:
            raise ValueError(f"this model is conditioned on {info['condition_on']}: give --condition "
                             f"{info['condition_on']}=VALUE, the label to write the sentences in "
                             f"({', '.join(info['labels'])})")
        source_label = f" ({info['condition_on']}={info['labels'][parse_label(source, info, '--source')]})" \
            if source is not None else ""
        target = f" ({self._labels_for(model, 1, condition)[1][0]})" if condition is not None else ""
        outputs = []
        for start in range(0, len(sentences), 256):
            chunk = sentences[start:start + 256]
            x = self.encode_text(model, chunk)
            labels = self._labels_for(model, len(chunk), condition)[0]
            outputs += self.decode_text(model, model.reconstruct(x, labels, sample_latent=sample_latent,
                                                                 **_decoding_options(options)))
        lines = []
        for sentence, output in zip(sentences, outputs, strict=True):
            lines += [f"{f'input{source_label}:':<15} {sentence}", f"{f'reconstruction{target}:':<15} {output}", ""]
        return [_write_lines(Path(out_dir) / "reconstructions.txt", lines[:-1], echo)]

    @torch.no_grad()
    def interpolate(self, model: vaekit.VAE, a: str, b: str, out_dir: Path, steps: int = 8, method: str = "linear",
                    echo: bool = False, inputs_are: str | None = None, **options) -> list[Path]:
        """Decode `steps` points (ends included) of the homotopy between two posterior means (Bowman et al., Tab. 7)."""
        t = vaekit.path_weights(steps)
        model.eval()
        a_text, b_text = self._one_sentence(a, inputs_are), self._one_sentence(b, inputs_are)
        means = model.posterior(self.encode_text(model, [a_text, b_text])).mean
        z = vaekit.latent_path(means[0], means[1], steps, method)
        labels, names = self._first_label(model, len(z))
        sentences = self.decode_text(model, model.decode(z, labels, **_decoding_options(options)))
        lines = [f"from: {a_text}", f"to:   {b_text}", *[f"decoded as {name}" for name in names[:1]], ""]
        lines += [f"t={float(ti):.2f}  {s}" for ti, s in zip(t, sentences, strict=True)]
        return [_write_lines(Path(out_dir) / "interpolation.txt", lines, echo)]

    @torch.no_grad()
    def traverse(self, model: vaekit.VAE, out_dir: Path, input: str | None = None, dims: str | list[int] | None = None,
                 span: float = 3.0, steps: int = 9, echo: bool = False, inputs_are: str | None = None,
                 **options) -> list[Path]:
        """traversal.txt: for each latent unit, the sentences decoded as it moves over [-span, span] around the
        prior mean (or `input`'s posterior mean), every other unit kept: what each unit changes in a sentence."""
        model.eval()
        units = parse_dims(dims, model.latent_dim)
        if input is None:
            base = model.sample_latents(1, None, temperature=0.0)[0]  # the prior's mean
        else:
            input = self._one_sentence(input, inputs_are)
            base = model.posterior(self.encode_text(model, [input])).mean[0]
        z = traversal(base, units, span, steps)
        sentences = []
        for start in range(0, len(z), 256):  # every unit of a 256-d code at 9 points is 2,304 sentences
            labels, names = self._first_label(model, len(z[start:start + 256]))
            sentences += self.decode_text(model, model.decode(z[start:start + 256], labels,
                                                              **_decoding_options(options)))
        values = traversal_values(span, steps).tolist()
        lines = [f"base: {input if input is not None else 'the prior mean'}",
                 *[f"decoded as {name}" for name in names[:1]], ""]
        for row, unit in enumerate(units):
            lines.append(f"unit {unit}:")
            lines += [f"  {v:+.2f}  {s}" for v, s in zip(values, sentences[row * steps:(row + 1) * steps], strict=True)]
            lines.append("")
        return [_write_lines(Path(out_dir) / "traversal.txt", lines[:-1], echo)]

    # -- evaluation --------------------------------------------------------------------------------
    def eval_metrics(self, model: vaekit.VAE, loader, summary: dict[str, float], recon_examples: int | None = None,
                     recon_beam_size: int = 0, transfer_examples: int | None = None,
                     scorer_cache: str | None = DEFAULT_CACHE, **options) -> dict:
        """Perplexity per word (<eos> counted) from the IW NLL, reconstruction BLEU-4 and token accuracy (greedy,
        and by beam search with recon_beam_size); flags posterior collapse (KL, active units ~ 0). A CVAE on a label
        also gets the transfer scores of vaekit_text.transfer (transfer_examples test sentences; 0 skips them)."""
        if recon_beam_size < 0:
            raise ValueError(f"--recon-beam-size: expected 0 (greedy only) or a beam size, got {recon_beam_size}")
        if transfer_examples is not None and transfer_examples < 0:
            raise ValueError(f"--transfer-examples: expected 0 (skip) or more sentences, got {transfer_examples}")
        transfer_scores = {}
        if model.config.get("info", {}).get("condition_on") and transfer_examples != 0:
            transfer_scores = transfer_report(self, model, getattr(loader, "dataset", None), scorer_cache,
                                              transfer_examples)[0]
        metrics = self._likelihood_metrics(loader, summary, model.decoder.use_latent)
        limit = int(summary.get("n_examples", 0)) if recon_examples is None else recon_examples
        if limit > 0:
            decodings = {"": {}}
            if recon_beam_size:  # the same posterior means, decoded both ways
                decodings["_beam"] = {"strategy": "beam", "beam_size": recon_beam_size}
                metrics["recon_beam_size"] = recon_beam_size
            metrics.update(reconstruction_metrics(self, model, loader, limit, decodings))
        return {**metrics, **transfer_scores}

    def _likelihood_metrics(self, loader, summary: dict[str, float], use_latent: bool) -> dict:
        """Words, tokens, PPL per word from the IW NLL (or its ELBO bound) and the posterior-collapse flag (never
        for a language model, model.use_latent=false, whose z is unused by design)."""
        n_examples = int(summary.get("n_examples", 0)) or None
        seen = words = tokens = 0
        for batch in loader:
            x = batch["x"] if "x" in batch else batch
            take = len(x["lengths"]) if n_examples is None else min(len(x["lengths"]), n_examples - seen)
            words += int(x["n_words"][:take].sum())
            tokens += int(x["lengths"][:take].sum())
            seen += take
            if n_examples is not None and seen >= n_examples:
                break
        metrics: dict = {"words": words, "tokens": tokens}
        nll = summary.get("nll")
        if nll is not None and words:
            total = nll * seen
            metrics["ppl"] = math.exp(total / words)  # per word, <eos> included (Mikolov's PTB convention)
            metrics["nll_per_word"] = total / words
            if tokens != words:
                metrics["ppl_per_token"] = math.exp(total / tokens)
        elif "elbo" in summary and words:
            metrics["ppl_elbo_bound"] = math.exp(-summary["elbo"] * seen / words)  # an upper bound on the PPL
        kl, active = summary.get("kl"), summary.get("active_units")
        collapsed = use_latent and kl is not None and active is not None and kl < COLLAPSE_KL_NATS \
            and active <= COLLAPSE_MAX_ACTIVE_UNITS
        metrics["posterior_collapse"] = bool(collapsed)
        if collapsed:
            print(f"WARNING: posterior collapse: KL = {kl:.3f} nats per sentence and {int(active)} active units; "
                  "the decoder ignores z. Try KL annealing (objective.kl_schedule), free bits "
                  "(objective.free_bits) or word dropout (model.word_dropout).", file=sys.stderr)
        return metrics


def loader_sources(loader) -> tuple[list[str], list[Tensor]] | None:
    """The text of each example a loader gives, in its order, and where its tokenizer wrote <unk> for text it lacks
    (SentenceDataset.unknown); None where the loader draws from something else or out of order."""
    from torch.utils.data import SequentialSampler, Subset

    dataset = getattr(loader, "dataset", None)
    if dataset is None or not isinstance(getattr(loader, "sampler", None), SequentialSampler):
        return None
    indices = list(range(len(dataset)))
    while isinstance(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if not isinstance(dataset, SentenceDataset) or dataset.sentences is None or dataset.unknown is None:
        return None
    return [dataset.sentences[i] for i in indices], [dataset.unknown[i] for i in indices]


@torch.no_grad()
def reconstruction_metrics(plugin: TextPlugin, model: vaekit.VAE, loader, limit: int,
                           decodings: dict[str, dict] | None = None) -> dict:
    """Decodes from the posterior mean of the first `limit` sentences against their inputs: greedy, or for each
    entry of `decodings` (key suffix -> decode options such as strategy='beam', beam_size), each sentence encoded once.

    recon_bleu4: sacrebleu's corpus BLEU-4 (0-100, its standard 13a tokenisation; case-blind where the vocabulary
    lowercases) of the decoded text against the sentences' own text; recon_token_accuracy: the share of input
    tokens (<eos> included) that the decode has at the same position, where an <unk> the tokenizer wrote for text it
    lacks is never matched (a literal <unk> in the text, as PTB writes rare words, is matched as any word).
    recon_unk_rate: the share of those tokens written <unk> for text the tokenizer lacks; where it is above 0, the
    figures against the tokenized references (an <unk> for an <unk> counted right) are kept as
    recon_bleu4_unk_level and recon_token_accuracy_unk_level. A loader whose examples' text is unknown (not a
    SentenceDataset read in order) is scored against its decoded tokens, and has no recon_unk_rate.
    """
    import sacrebleu

    decodings = decodings or {"": {}}
    sources = loader_sources(loader)
    bar = tqdm(total=limit, desc="reconstructions", unit="sentence", leave=False, mininterval=1.0)
    was_training = model.training
    model.eval()
    references, total, unknown = [], 0, 0
    hypotheses = {suffix: [] for suffix in decodings}
    correct = dict.fromkeys(decodings, 0)
    correct_unk_level = dict.fromkeys(decodings, 0)
    for batch in loader:
        x = to_device(batch["x"] if "x" in batch else batch, model.device)
        take = min(len(x["lengths"]), limit - len(references))
        x = {key: value[:take] for key, value in x.items()}
        means = model.posterior(x).mean
        mask = real_tokens(x)
        made_unk = torch.zeros_like(mask)
        if sources is not None:
            for row, marks in enumerate(sources[1][len(references):len(references) + take]):
                made_unk[row, :len(marks)] = marks.to(mask.device)
        for suffix, options in decodings.items():
            # Capped at the data's max_length, as `vaekit reconstruct` is: a cap read off the inputs would spare a
            # decode that runs on the precision it costs, and make a sentence's score depend on its batch
            out = model.decode(means, None, **options)
            width = min(out["tokens"].shape[1], x["tokens"].shape[1])
            same = (out["tokens"][:, :width] == x["tokens"][:, :width]) & mask[:, :width]
            correct_unk_level[suffix] += int(same.sum())
            correct[suffix] += int((same & ~made_unk[:, :width]).sum())
            hypotheses[suffix] += plugin.decode_text(model, out)
        total += int(x["lengths"].sum())
        unknown += int(made_unk.sum())
        references += plugin.decode_text(model, x)
        bar.update(take)
        if len(references) >= limit:
            break
    bar.close()
    model.train(was_training)
    metrics: dict = {"recon_examples": len(references)}
    texts = references if sources is None else sources[0][:len(references)]
    lowercase = bool(getattr(plugin.tokenizer(model), "lowercase", False))
    for suffix in decodings:
        metrics[f"recon_bleu4{suffix}"] = sacrebleu.corpus_bleu(hypotheses[suffix], [texts],
                                                                lowercase=lowercase).score
        metrics[f"recon_token_accuracy{suffix}"] = correct[suffix] / max(1, total)
    if sources is not None:
        metrics["recon_unk_rate"] = unknown / max(1, total - len(references))  # <eos> is never <unk>
    if unknown:
        for suffix in decodings:
            metrics[f"recon_bleu4_unk_level{suffix}"] = sacrebleu.corpus_bleu(hypotheses[suffix], [references]).score
            metrics[f"recon_token_accuracy_unk_level{suffix}"] = correct_unk_level[suffix] / max(1, total)
    return metrics
