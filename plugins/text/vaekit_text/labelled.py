"""Labelled corpora: sentences with a label each (a sentiment, an author), read in one of two layouts.

    label<TAB>sentence per line        data: {train: reviews.tsv, condition_on: sentiment}
    one file per label                 data: {train: yelp/train.{label}, labels: ["0", "1"], condition_on: sentiment}

A `{label}` in a path stands for each label value in turn (`labels` names them, in id order); otherwise a .tsv file
(or format: tsv) holds `label<TAB>sentence` lines, and the labels are the training file's values, sorted, unless
`labels` lists them. Every error names the file and line: an unknown label value, a line with no label column, a
label that has no sentences.
"""

from __future__ import annotations

from pathlib import Path

from vaekit.plugin_api import PluginError

from .data import TextDataError, _decode_line, read_sentences

LABEL_SLOT = "{label}"


def is_tsv(path: str, fmt: str) -> bool:
    """Whether path is read as label<TAB>sentence lines (format tsv, or auto and a .tsv file)."""
    return fmt == "tsv" or (fmt == "auto" and Path(path).suffix == ".tsv")


def label_paths(path: str, labels: list[str]) -> dict[str, Path]:
    """The file of each label for a path with {label} in it (label value -> path)."""
    if not labels:
        raise TextDataError(f"{path}: {LABEL_SLOT} in a path needs data.labels, the label values it stands for")
    return {label: Path(path.replace(LABEL_SLOT, label)) for label in labels}


def read_tsv(path: Path, known: list[str] | None = None) -> list[tuple[str, str]]:
    """(label, sentence) of every non-empty `label<TAB>sentence` line of path; a label outside known (if given) is
    an error."""
    if not path.is_file():
        raise TextDataError(f"{path}: no such file")
    pairs = []
    for lineno, raw in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        line = _decode_line(raw, path, lineno).strip("\r\n")
        if not line.strip():
            continue
        label, tab, sentence = line.partition("\t")
        if not tab or not label.strip():
            raise TextDataError(f"{path}:{lineno}: no label column; expected label<TAB>sentence, got "
                                f"{line.strip()[:60]!r}")
        if not sentence.strip():
            raise TextDataError(f"{path}:{lineno}: label {label.strip()!r} has an empty sentence")
        if known and label.strip() not in known:
            raise TextDataError(f"{path}:{lineno}: unknown label {label.strip()!r}; expected one of "
                                f"{', '.join(known)} (data.labels, or the training file's labels)")
        pairs.append((label.strip(), sentence.strip()))
    return pairs


def read_labelled(path: str, labels: list[str], fmt: str = "auto", field: str = "text") -> list[tuple[str, str]]:
    """(label value, sentence) pairs of one split: one file per label ({label} in path) or label<TAB>sentence lines.

    labels: the values a split may hold ([] for a .tsv training file: any). Unknown values, lines without a label
    column and a {label} file with no sentences are TextDataErrors naming the file (and line)."""
    if LABEL_SLOT in path:
        pairs = []
        for label, file in label_paths(path, labels).items():
            found = read_sentences(file, fmt, field)
            if not found:
                raise TextDataError(f"{file}: label {label!r} has no sentences (every line is empty)")
            pairs += [(label, sentence) for sentence in found]
        return pairs
    return read_tsv(Path(path), labels)


def training_labels(pairs: list[tuple[str, str]], labels: list[str], path: str) -> list[str]:
    """The label values in id order (the given ones, or the training split's, sorted); each must have sentences."""
    values = list(labels) or sorted({label for label, _ in pairs})
    counts = dict.fromkeys(values, 0)
    for label, _ in pairs:
        counts[label] = counts.get(label, 0) + 1
    empty = [label for label, n in counts.items() if n == 0]
    if empty:
        raise TextDataError(f"{path}: label {empty[0]!r} has no sentences; every one of "
                            f"{', '.join(values)} needs training sentences")
    if len(values) < 2:
        raise TextDataError(f"{path}: one label ({values[0]!r}) only; a labelled corpus needs two or more")
    return values


def read_references(path: str, labels: list[str]) -> dict[str, list[tuple[str, str]]]:
    """For each label, (source sentence, human rewrite with another label) pairs: `source<TAB>rewrite` lines, one
    file per source label ({label} in path)."""
    out = {}
    for label, file in label_paths(path, labels).items():
        if not file.is_file():
            raise TextDataError(f"{file}: no such file (data.references: source<TAB>rewrite lines per label)")
        out[label] = read_tsv(file)
        if not out[label]:
            raise TextDataError(f"{file}: no source<TAB>rewrite lines for label {label!r}")
    return out


def is_labelled(data) -> bool:
    """Whether a text data section reads a labelled corpus (a label to condition on, a .tsv or a {label} path)."""
    return bool(data.condition_on) or LABEL_SLOT in data.train or is_tsv(data.train, data.format)


def read_label_splits(data, splits: dict[str, str | None]) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """The label values in id order and each given split's (label, sentence) pairs; val and test may hold only the
    training split's labels."""
    pairs = {"train": read_labelled(data.train, data.labels, data.format, data.text_field)}
    labels = training_labels(pairs["train"], data.labels, data.train)
    for name, path in splits.items():
        if name != "train" and path:
            pairs[name] = read_labelled(path, labels, data.format, data.text_field)
    return labels, pairs


def parse_label(text: str, info: dict, option: str = "--condition") -> int:
    """`NAME=VALUE` (or a bare VALUE) -> the label's id in a text CVAE trained with data.condition_on=NAME."""
    name, labels = info.get("condition_on"), info.get("labels") or []
    if not name:
        raise PluginError(f"{option} {text!r}: this text model is unconditional (train it on a labelled corpus "
                          "with data.condition_on)")
    key, equals, value = text.partition("=")
    key, value = (key.strip(), value.strip()) if equals else (name, key.strip())
    if key != name:
        raise ValueError(f"{option} {text!r}: this model is conditioned on {name!r}; expected {name}=VALUE")
    if value not in labels:
        raise ValueError(f"{option} {text!r}: unknown {name} {value!r}; expected one of {', '.join(labels)}")
    return labels.index(value)
