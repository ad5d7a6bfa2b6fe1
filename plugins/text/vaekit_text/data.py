"""Sentences from files -> token ids -> padded batches.

Sources: one sentence per line (.txt, PTB), a folder of .txt files, or JSONL with a text field.
Empty lines are skipped; bytes that are not UTF-8 raise TextDataError naming the file and line.
An example is {"x": {"tokens": LongTensor[T] (ids + <eos>), "lengths": T, "n_words": words + 1}};
`collate` pads tokens with the pad id, so a batch x is {"tokens": [B, T], "lengths": [B], "n_words": [B]}.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaekit.plugin_api import quote

log = logging.getLogger("vaekit.text")


class TextDataError(ValueError):
    """A data file that cannot be read as sentences; the message names the file and line."""


def _decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextDataError(f"{path}:{lineno}: not valid UTF-8 (byte {raw[exc.start]:#04x} at column "
                            f"{exc.start + 1}); re-encode the file as UTF-8") from None


def read_lines(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file, stripped."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not text
        raw = raw[3:]
    out = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        text = _decode_line(line, path, lineno).strip()
        if text:
            out.append(text)
    return out


def read_jsonl(path: Path, field: str) -> list[str]:
    """The `field` string of every JSON object line in path (blank lines and empty texts skipped)."""
    out = []
    for lineno, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        text = _decode_line(line, path, lineno).strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TextDataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or field not in obj:
            raise TextDataError(f"{path}:{lineno}: expected a JSON object with a {field!r} field")
        if not isinstance(obj[field], str):
            raise TextDataError(f"{path}:{lineno}: field {field!r} must be a string, got {type(obj[field]).__name__}")
        if obj[field].strip():
            out.append(obj[field].strip())
    return out


def read_sentences(path: str | Path, fmt: str = "auto", field: str = "text") -> list[str]:
    """Sentences from a .txt file, a folder of .txt files (sorted by name) or a .jsonl file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise TextDataError(f"{path}: folder holds no .txt files")
        return [s for f in files for s in read_lines(f)]
    if not path.is_file():
        raise TextDataError(f"{path}: no such file or folder")
    if fmt == "jsonl" or (fmt == "auto" and path.suffix == ".jsonl"):
        return read_jsonl(path, field)
    return read_lines(path)


@dataclass
class LengthReport:
    """What the max_length rule did to a split."""

    kept: int = 0
    filtered: int = 0
    truncated: int = 0


@dataclass
class Encoded:
    """A split's kept sentences: ids (+ <eos>), word counts (+1 for <eos>), their text, and where the tokenizer
    wrote <unk> for text it lacks (a literal <unk> in the text aside)."""

    tokens: list[Tensor]
    words: list[int]
    sentences: list[str]
    unknown: list[Tensor]  # bool [T] per sentence, False at <eos>
    report: LengthReport
    kept: list[int] = field(default_factory=list)  # the input position of each kept sentence

    @property
    def unknown_rate(self) -> float:
        """Share of the split's tokens (<eos> aside) that the tokenizer wrote <unk> for text it lacks."""
        total = sum(len(t) - 1 for t in self.tokens)
        return sum(int(u.sum()) for u in self.unknown) / max(total, 1)


def encode_sentences(sentences: list[str], tokenizer, max_length: int, long_lines: str) -> Encoded:
    """Token id tensors (ids + <eos>) and word counts (+1 for <eos>); long sentences filtered or truncated."""
    out = Encoded([], [], [], [], LengthReport())
    for position, sentence in enumerate(sentences):
        ids, unknown = tokenizer.encode_marked(sentence)
        n_words = len(sentence.split())
        if len(ids) + 1 > max_length:
            if long_lines == "filter":
                out.report.filtered += 1
                continue
            out.report.truncated += 1
            ids, unknown = ids[: max_length - 1], unknown[: max_length - 1]
            n_words = len(tokenizer.decode(ids).split())
        if not ids:  # nothing the tokenizer can express: an empty sentence says nothing about the model
            out.report.filtered += 1
            continue
        out.tokens.append(torch.tensor(ids + [tokenizer.eos_id], dtype=torch.long))
        out.words.append(n_words + 1)
        out.sentences.append(sentence)
        out.unknown.append(torch.tensor(unknown + [False], dtype=torch.bool))
        out.kept.append(position)
        out.report.kept += 1
    return out


class SentenceDataset(Dataset):
    """Tokenised sentences; items are {"x": {"tokens", "lengths", "n_words"}}. sentences (the text each came from)
    and unknown (bool [T]: where the tokenizer wrote <unk> for text it lacks) score reconstructions against the
    text itself."""

    def __init__(self, tokens: list[Tensor], n_words: list[int], sentences: list[str] | None = None,
                 unknown: list[Tensor] | None = None, labels: list[int] | None = None,
                 classes: list[int] | None = None):
        self.tokens = tokens
        self.n_words = n_words
        self.sentences = sentences
        self.unknown = unknown
        self.labels = labels  # a labelled corpus: each sentence's label id, the item's condition "c"
        self.classes = classes  # a labelled corpus read unconditioned: each sentence's label id, the item's "label"

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict:
        t = self.tokens[i]
        item = {"x": {"tokens": t, "lengths": torch.tensor(len(t)), "n_words": torch.tensor(self.n_words[i])}}
        if self.labels is not None:
            item["c"] = torch.tensor([self.labels[i]])
        if self.classes is not None:  # what a semi-supervised objective (objective.kind m2) learns to predict
            item["label"] = torch.tensor(self.classes[i])
        return item


def pad_tokens(sequences: list[Tensor], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad 1-d id tensors to [B, T_max] with pad_id; also their lengths [B]."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    out = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out, lengths


class Collate:
    """Batch examples: tokens padded with pad_id (a class, not a closure, so DataLoader workers can pickle it)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict]) -> dict:
        tokens, lengths = pad_tokens([item["x"]["tokens"] for item in items], self.pad_id)
        n_words = torch.stack([item["x"]["n_words"] for item in items])
        batch = {"x": {"tokens": tokens, "lengths": lengths, "n_words": n_words}}
        if "c" in items[0]:
            batch["c"] = torch.stack([item["c"] for item in items])
        if "label" in items[0]:
            batch["label"] = torch.stack([item["label"] for item in items])
        return batch


def make_batch(sentences: list[str], tokenizer, max_length: int) -> dict:
    """x for a list of sentences given on the command line (truncated to max_length, never dropped)."""
    encoded = encode_sentences(sentences, tokenizer, max_length, "truncate")
    tokens, words, report = encoded.tokens, encoded.words, encoded.report
    if len(tokens) != len(sentences):
        raise ValueError("a sentence has no tokens the model knows; give non-empty text")
    if report.truncated:  # the model reads at most max_length tokens: the rest of a long sentence is not encoded
        first = next(s for s in sentences if len(tokenizer.encode(s)) + 1 > max_length)
        log.warning("%d of %d input sentences are longer than the model's %d tokens (data.max_length, <eos> "
                    "included) and were cut to their first %d tokens; the first has %s tokens: %s", report.truncated,
                    len(sentences), max_length, max_length - 1, f"{len(tokenizer.encode(first)):,}", quote(first))
    items = [{"x": {"tokens": t, "n_words": torch.tensor(w)}} for t, w in zip(tokens, words, strict=True)]
    return Collate(tokenizer.pad_id)(items)["x"]
