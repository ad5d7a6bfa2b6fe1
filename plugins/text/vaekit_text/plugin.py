"""TextPlugin: sentence VAEs in vaekit — data, models, and what people do with them (all written as .txt).

    vaekit train recipes/text/ptb_lstm.yaml
    vaekit sample runs/ptb_lstm -n 10 --strategy sample --top-p 0.9
    vaekit sample runs/ptb_lstm --around "the company said it expects" -n 10
    vaekit reconstruct runs/ptb_lstm "the market closed higher" sentences.txt
    vaekit interpolate runs/ptb_lstm "he said it was n't" "the stock fell N N" --steps 7
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

import vaekit
from vaekit.plugin_api import (
    DemoKinds,
    SubsetConfig,
    at_least,
    atomic_write_text,
    parse_dims,
    pick,
    to_device,
    traversal,
    traversal_values,
)

from .config import TextDataConfig, TextModelConfig
from .data import Collate, SentenceDataset, encode_sentences, make_batch, read_sentences
from .decoding_options import decoding_arguments, decoding_options
from .inputs import input_arguments, one_sentence, read_inputs, utf8
from .labelled import is_labelled, parse_label, read_label_splits
from .metrics import likelihood_metrics, reconstruction_metrics
from .scorers import DEFAULT_CACHE
from .tokenizers import Tokenizer, build_tokenizer, has_tokenizer, load_tokenizer, report_unknown
from .transfer import transfer_report

log = logging.getLogger("vaekit.text")


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
            ids = [label_ids[name][i] for i in encoded.kept] if name in label_ids else None
            conditioned = bool(data.condition_on)  # the label is the decoder's condition, or a class to predict
            datasets[name] = SentenceDataset(encoded.tokens, encoded.words, encoded.sentences, encoded.unknown,
                                             ids if conditioned else None, None if conditioned else ids)
            reports[name] = vars(report)
            unknown[name] = encoded.unknown_rate
            if report.filtered or report.truncated:
                log.warning("%s split (%s): %d sentences kept, %d longer than %d tokens filtered, %d truncated",
                            name, splits[name], report.kept, report.filtered, data.max_length, report.truncated)
        report_unknown(unknown, splits, tokenizer)
        info = {"tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size, "pad_id": tokenizer.pad_id,
                "unk_id": tokenizer.unk_id, "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id,
                "max_length": data.max_length, "lengths": reports, "unk_rates": unknown}
        if data.condition_on:  # what conditioning, parse_condition and the transfer scores need
            info.update(condition_on=data.condition_on, labels=labels, references=data.references,
                        labelled_train={"path": data.train, "format": data.format, "text_field": data.text_field},
                        labelled_test=data.test)
        elif label_ids:  # a labelled corpus without a condition: its labels are classes (objective.kind m2)
            info["class_names"] = labels
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
                                                    **decoding_options(options)))

    def load_inputs(self, model: vaekit.VAE, inputs: list[str]) -> dict:
        """Sentences and .txt files (one sentence per line) -> a batch x (`vaekit encode`)."""
        return self.encode_text(model, read_inputs(inputs))

    # -- CLI verbs ---------------------------------------------------------------------------------
    def add_arguments(self, verb: str, parser) -> None:
        if verb in ("sample", "reconstruct", "interpolate", "traverse"):
            decoding_arguments(parser)
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
            input_arguments(parser)
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
                                                             **decoding_options(options)))
            rows = [f"{info['labels'][int(i)]}\t{s}" for i, s in zip(labels.reshape(-1), sentences, strict=True)]
            return [_write_lines(Path(out_dir) / "samples.tsv", rows, echo)]
        if around is not None:
            posterior = model.posterior(self.encode_text(model, [utf8(around)]))
            z = posterior.mean + temperature * posterior.std * torch.randn(n, posterior.dim, device=model.device)
        else:
            z = model.sample_latents(n, None, temperature)
        sentences = self.decode_text(model, model.decode(z, labels, **decoding_options(options)))
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
        sentences = read_inputs(inputs, inputs_are)
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
                                                                 **decoding_options(options)))
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
        a_text, b_text = one_sentence(a, inputs_are), one_sentence(b, inputs_are)
        means = model.posterior(self.encode_text(model, [a_text, b_text])).mean
        z = vaekit.latent_path(means[0], means[1], steps, method)
        labels, names = self._first_label(model, len(z))
        sentences = self.decode_text(model, model.decode(z, labels, **decoding_options(options)))
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
            input = one_sentence(input, inputs_are)
            base = model.posterior(self.encode_text(model, [input])).mean[0]
        z = traversal(base, units, span, steps)
        sentences = []
        for start in range(0, len(z), 256):  # every unit of a 256-d code at 9 points is 2,304 sentences
            labels, names = self._first_label(model, len(z[start:start + 256]))
            sentences += self.decode_text(model, model.decode(z[start:start + 256], labels,
                                                              **decoding_options(options)))
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
        metrics = likelihood_metrics(loader, summary, model.decoder.use_latent)
        limit = int(summary.get("n_examples", 0)) if recon_examples is None else recon_examples
        if limit > 0:
            decodings = {"": {}}
            if recon_beam_size:  # the same posterior means, decoded both ways
                decodings["_beam"] = {"strategy": "beam", "beam_size": recon_beam_size}
                metrics["recon_beam_size"] = recon_beam_size
            metrics.update(reconstruction_metrics(self, model, loader, limit, decodings))
        return {**metrics, **transfer_scores}
