"""The CLI inputs of the text verbs: sentences or files of one sentence per line (INPUT_RULE)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from vaekit.plugin_api import quote

from .data import read_lines

log = logging.getLogger("vaekit.text")

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


def utf8(item: str) -> str:
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


def input_arguments(parser) -> None:
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--text", dest="inputs_are", action="store_const", const="text",
                       help="every input is a sentence, even one that names a file")
    kinds.add_argument("--file", dest="inputs_are", action="store_const", const="file",
                       help="every input is a file with one sentence per line")
    parser.epilog = f"Inputs: {INPUT_RULE}."


def read_inputs(inputs: list[str], inputs_are: str | None = None) -> list[str]:
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
            sentences.append(utf8(item).strip())
    if not sentences:
        where = f": {', '.join(empty_files)} holds no sentence (every line is empty)" if empty_files else ""
        raise ValueError(f"no sentences given{where}; pass sentences, or files with one sentence per line")
    if empty_files:
        log.warning("%s: holds no sentence (every line is empty)", ", ".join(empty_files))
    return sentences


def one_sentence(item: str, inputs_are: str | None) -> str:
    """The sentence an input gives (a file must hold exactly one line)."""
    lines = read_inputs([item], inputs_are)
    if len(lines) != 1:
        raise ValueError(f"{quote(item)}: expected one sentence, the file holds {len(lines)}")
    return lines[0]
