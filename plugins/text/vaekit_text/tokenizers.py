"""Tokenizers: a PTB-style word vocabulary, SentencePiece, or a Hugging Face tokenizer from a local folder.

Every tokenizer maps text to ids without special tokens (`encode`) and back (`decode`), and has four
distinct special ids: pad (never predicted, masked out of the likelihood), unk, bos (the decoder's
first input) and eos (predicted after the last word, counted in the perplexity).

    tok = build_tokenizer(data_cfg, train_sentences)   # fit on the training split
    tok.save(assets)                                   # assets/tokenizer.json (+ the model files)
    tok = load_tokenizer(assets)                       # what build_model does
    report_unknown(rates, paths, tok)                  # warn of splits it writes much <unk> in
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from vaekit.plugin_api import atomic_write_bytes, atomic_write_text

MANIFEST = "tokenizer.json"
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
log = logging.getLogger("vaekit.text")
SPM_MAX_SENTENCE_BYTES = 4192  # SentencePiece skips longer training lines (its default max_sentence_length)


# Punctuation the word vocabulary's "punctuation" split writes as words of their own: marks that are always split,
# dash runs, and , or : that are not between digits (1,000 and 10:30 stay whole). An apostrophe, a hyphen or $ stays
# inside its word (didn't, long-term, us$), as Penn Treebank writes them.
ALWAYS_SPLIT = re.compile(r"([!?;\"()\[\]{}\u201c\u201d\u00ab\u00bb\u2026]|\u2014|\u2013|-{2,}|(?<!\d)[,:]|[,:](?!\d))")
PUNCTUATION = re.compile(r"[!?;\"()\[\]{}\u201c\u201d\u00ab\u00bb\u2026\u2014\u2013,:.]+|-{2,}")
# Words whose final period is part of the word, not the sentence's end (besides single letters and words with an
# inner period such as u.s.)
ABBREVIATIONS = frozenset(
    "mr mrs ms messrs dr prof rev gen gov sen sens rep adm col st jr sr co cos corp inc ltd bros no cie vs etc fig vol "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "ala ariz calif colo conn fla ga ind kan ky md mich minn neb nev okla ore pa tenn va wis".split())
GLUE_LEFT = frozenset(",.;:!?)]}\u201d\u00bb\u2026")  # written without a space before them
GLUE_RIGHT = frozenset("([{\u201c\u00ab")  # written without a space after them


def split_punctuation(text: str) -> list[str]:
    """Whitespace words with punctuation split off ("moon!" -> "moon", "!"); PTB's tokens are left whole.

    A final period is split off a word that ends the line or comes before punctuation or a capitalised word,
    unless the word is an abbreviation (mr., u.s., j.); "..." is always split off.
    """
    pieces: list[str] = []
    for word in text.split():
        if word in (PAD, UNK, BOS, EOS):
            pieces.append(word)
        else:
            pieces += [p for p in ALWAYS_SPLIT.split(word) if p]
    out: list[str] = []
    for k, piece in enumerate(pieces):
        stem = piece.rstrip(".")
        dots = len(piece) - len(stem)
        if dots and stem and not PUNCTUATION.fullmatch(piece):
            following = pieces[k + 1] if k + 1 < len(pieces) else None
            ends = following is None or PUNCTUATION.fullmatch(following) or following[0].isupper()
            abbreviation = "." in stem or len(stem) == 1 or stem.lower() in ABBREVIATIONS
            if dots > 1 or (ends and not abbreviation):
                out += [stem, piece[len(stem):]]
                continue
        out.append(piece)
    return out


def join_punctuation(words: list[str]) -> str:
    """The words as text, punctuation glued back the way split_punctuation found it most often ("moon !" ->
    "moon!"); a straight double quote opens and closes in turn."""
    text, glue_next, quotes = "", True, 0
    for word in words:
        closing = word == '"' and quotes % 2 == 1
        if word == '"':
            quotes += 1
        left = closing or (PUNCTUATION.fullmatch(word) is not None and word[0] in GLUE_LEFT)
        text += word if glue_next or left else " " + word
        glue_next = word in GLUE_RIGHT or (word == '"' and not closing)
    return text


class Tokenizer:
    """Shared interface: encode(text) -> ids, decode(ids) -> text, special ids, save(folder)."""

    kind = ""
    pad_id: int
    unk_id: int
    bos_id: int
    eos_id: int

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        return self.encode_marked(text)[0]

    def encode_marked(self, text: str) -> tuple[list[int], list[bool]]:
        """ids, and for each whether it is an <unk> the tokenizer made (text it lacks; a literal <unk> is not)."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        raise NotImplementedError


WORD_SPLITS = ("whitespace", "punctuation")


class WordVocabulary(Tokenizer):
    """Words, most frequent first, capped at max_size entries (specials included), PTB-compatible.

    split "whitespace" takes the text's own words (a tokenised corpus such as PTB); "punctuation" also splits
    punctuation off them (split_punctuation), which leaves PTB's words as they are. The PTB files already write
    rare words as `<unk>`; that word maps to the unk id, so a PTB vocabulary built here has PTB's 10,000 entries
    (its 9,999 words + <eos>) plus <pad> and <bos>.
    """

    kind = "word"

    def __init__(self, words: list[str], lowercase: bool = False, split: str = "whitespace"):
        if words[:4] != [PAD, UNK, BOS, EOS]:
            raise ValueError(f"a word vocabulary starts with {PAD}, {UNK}, {BOS}, {EOS}")
        if split not in WORD_SPLITS:
            raise ValueError(f"word split {split!r}: expected one of {', '.join(WORD_SPLITS)}")
        self.words = list(words)
        self.lowercase = lowercase
        self.split = split
        self.index = {word: i for i, word in enumerate(self.words)}
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = 0, 1, 2, 3

    def tokens(self, text: str) -> list[str]:
        """The words of text as this vocabulary counts them (lowercased, punctuation split, as configured)."""
        text = text.lower() if self.lowercase else text
        return split_punctuation(text) if self.split == "punctuation" else text.split()

    @classmethod
    def fit(cls, sentences: Iterable[str], max_size: int, min_freq: int = 1, lowercase: bool = False,
            split: str = "whitespace") -> WordVocabulary:
        """Count words in sentences; keep the max_size - 4 most frequent with count >= min_freq (ties by word)."""
        empty = cls([PAD, UNK, BOS, EOS], lowercase, split)
        counts: Counter[str] = Counter()
        for sentence in sentences:
            counts.update(empty.tokens(sentence))
        for special in (PAD, UNK, BOS, EOS):
            counts.pop(special, None)
        ranked = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, BOS, EOS] + ranked[: max(0, max_size - 4)], lowercase, split)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def unknown_share(self, sentences: Iterable[str]) -> float:
        """Share of the words in sentences that become <unk> here (a literal <unk> in the text, as PTB has, aside)."""
        unknown = total = 0
        for sentence in sentences:
            words = self.tokens(sentence)
            total += len(words)
            unknown += sum(word not in self.index for word in words)
        return unknown / max(total, 1)

    def encode_marked(self, text: str) -> tuple[list[int], list[bool]]:
        words = self.tokens(text)
        return [self.index.get(word, self.unk_id) for word in words], [word not in self.index for word in words]

    def decode(self, ids: Iterable[int]) -> str:
        skip = {self.pad_id, self.bos_id, self.eos_id}
        words = [self.words[i] for i in ids if i not in skip]
        return join_punctuation(words) if self.split == "punctuation" else " ".join(words)

    def save(self, folder: Path) -> None:
        atomic_write_text(folder / "vocab.txt", "\n".join(self.words) + "\n")
        _write_manifest(folder, {"kind": self.kind, "file": "vocab.txt", "lowercase": self.lowercase,
                                 "split": self.split})

    @classmethod
    def load(cls, folder: Path, manifest: dict) -> WordVocabulary:
        words = (folder / manifest["file"]).read_text(encoding="utf-8").split("\n")
        return cls([w for w in words if w], manifest.get("lowercase", False), manifest.get("split", "whitespace"))


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model (unigram or BPE) trained on the training sentences; ids 0-3 are the specials."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (
            self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())

    @classmethod
    def fit(cls, sentences: list[str], vocab_size: int, model_type: str = "unigram",
            character_coverage: float = 1.0, seed: int = 0, source: str = "the training text"
            ) -> SentencePieceTokenizer:
        """Train in memory on sentences; hard_vocab_limit off so a small corpus still trains."""
        import sentencepiece as spm

        if not any(len(s.encode("utf-8")) <= SPM_MAX_SENTENCE_BYTES for s in sentences):
            raise ValueError(f"{source}: every line is longer than SentencePiece's limit of {SPM_MAX_SENTENCE_BYTES} "
                             "bytes, so it has nothing to learn from; split the text into sentences, one per line")
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)  # sentence sampling and shuffling: the same seed, the same pieces
        try:
            spm.SentencePieceTrainer.train(  # a literal <unk> (PTB writes rare words so) is the unk id, not pieces
                sentence_iterator=(s.replace(UNK, " ") for s in sentences), model_writer=model,
                vocab_size=vocab_size, model_type=model_type,
                character_coverage=character_coverage, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
                pad_piece=PAD, unk_piece=UNK, bos_piece=BOS, eos_piece=EOS, hard_vocab_limit=False,
                num_threads=1, minloglevel=2,
                input_sentence_size=200_000, shuffle_input_sentence=True, max_sentence_length=SPM_MAX_SENTENCE_BYTES,
            )
        except RuntimeError as exc:  # its messages ("INTERNAL: ... [!sentences_.empty()]") name no file
            raise ValueError(f"{source}: SentencePiece could not train on it ({' '.join(str(exc).split())})") from None
        return cls(model.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode_marked(self, text: str) -> tuple[list[int], list[bool]]:
        """Pieces; a literal <unk> in the text (a PTB word) is the one unk id, as the word vocabulary has it."""
        ids: list[int] = []
        marks: list[bool] = []
        for i, part in enumerate(text.split(UNK)):
            pieces = self.sp.encode(part) if part.strip() else []
            ids += ([self.unk_id] if i else []) + pieces
            marks += ([False] if i else []) + [piece == self.unk_id for piece in pieces]
        return ids, marks

    def decode(self, ids: Iterable[int]) -> str:
        """Text; the unk id is written <unk> (SentencePiece's own decoding writes it as ' ⁇ ')."""
        words, run = [], []
        for i in (int(i) for i in ids if i not in (self.pad_id, self.bos_id, self.eos_id)):
            if i == self.unk_id:
                words += [self.sp.decode(run), UNK]
                run = []
            else:
                run.append(i)
        return " ".join(word for word in [*words, self.sp.decode(run)] if word)

    def save(self, folder: Path) -> None:
        atomic_write_bytes(folder / "spm.model", self.model_proto)
        _write_manifest(folder, {"kind": self.kind, "file": "spm.model"})

    @classmethod
    def load(cls, folder: Path, manifest: dict) -> SentencePieceTokenizer:
        return cls((folder / manifest["file"]).read_bytes())


class HuggingFaceTokenizer(Tokenizer):
    """transformers.AutoTokenizer from a local folder (never downloads); adds <pad> / <bos> / <eos> if missing.

    BERT-style tokenizers have no bos/eos: [CLS] and [SEP] play those parts.
    """

    kind = "hf"

    def __init__(self, folder: str | Path):
        from transformers import AutoTokenizer

        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder}: Hugging Face tokenizer folder not found")
        try:
            self.tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{folder}: not a readable Hugging Face tokenizer folder ({exc})") from None
        tok = self.tok
        added = {}
        if tok.pad_token_id is None:
            added["pad_token"] = PAD
        if tok.bos_token_id is None and tok.cls_token_id is None:
            added["bos_token"] = BOS
        if tok.eos_token_id is None and tok.sep_token_id is None:
            added["eos_token"] = EOS
        if tok.unk_token_id is None:
            added["unk_token"] = UNK
        if added:
            tok.add_special_tokens(added)
        self.pad_id = tok.pad_token_id
        self.bos_id = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
        self.eos_id = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        self.unk_id = tok.unk_token_id
        if len({self.pad_id, self.bos_id, self.eos_id}) < 3:
            raise ValueError(f"{folder}: the tokenizer's pad, bos and eos tokens must differ "
                             f"(got ids {self.pad_id}, {self.bos_id}, {self.eos_id})")

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def encode_marked(self, text: str) -> tuple[list[int], list[bool]]:
        ids = self.tok.encode(text, add_special_tokens=False)
        return ids, [i == self.unk_id for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        skip = {self.pad_id, self.bos_id, self.eos_id}
        return self.tok.decode([int(i) for i in ids if i not in skip], skip_special_tokens=False).strip()

    def save(self, folder: Path) -> None:
        target = folder / "hf_tokenizer"
        if target.exists():
            shutil.rmtree(target)
        self.tok.save_pretrained(str(target))
        _write_manifest(folder, {"kind": self.kind, "file": "hf_tokenizer"})

    @classmethod
    def load(cls, folder: Path, manifest: dict) -> HuggingFaceTokenizer:
        return cls(folder / manifest["file"])


TOKENIZERS = {cls.kind: cls for cls in (WordVocabulary, SentencePieceTokenizer, HuggingFaceTokenizer)}


def _write_manifest(folder: Path, manifest: dict) -> None:
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")


UNKNOWN_WORDS_WARNING = 0.01  # share of a split's tokens the tokenizer writes <unk> that is worth a warning


def build_tokenizer(data_cfg, train_sentences: list[str], seed: int = 0) -> Tokenizer:
    """The tokenizer the data section asks for, fitted on the training sentences where it learns.

    A corpus too small for data.vocab_size gives a smaller vocabulary: that is said in one line (the share of each
    split that becomes <unk> is said by the plugin's build_data).
    """
    if data_cfg.tokenizer == "word":
        tokenizer = WordVocabulary.fit(train_sentences, data_cfg.vocab_size, data_cfg.min_freq, data_cfg.lowercase,
                                       data_cfg.word_split)
    elif data_cfg.tokenizer == "sentencepiece":
        tokenizer = SentencePieceTokenizer.fit(train_sentences, data_cfg.vocab_size, data_cfg.spm_model_type,
                                               data_cfg.spm_character_coverage, seed, source=str(data_cfg.train))
    else:
        return HuggingFaceTokenizer(data_cfg.hf_tokenizer)
    if tokenizer.vocab_size < data_cfg.vocab_size:
        log.warning("data.vocab_size=%d: %s supports only %d %s tokenizer entries (specials included); the model "
                    "uses %d (recorded in the run's recipe.yaml)", data_cfg.vocab_size, data_cfg.train,
                    tokenizer.vocab_size, tokenizer.kind, tokenizer.vocab_size)
        data_cfg.vocab_size = tokenizer.vocab_size  # the trainer writes the resolved recipe after the data is built
    return tokenizer


def has_tokenizer(folder: Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def load_tokenizer(folder: str | Path) -> Tokenizer:
    """The tokenizer saved in folder (a run's assets) by Tokenizer.save."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"{path}: missing; the text model's tokenizer was not saved with it")
    manifest = json.loads(path.read_text())
    kind = manifest.get("kind")
    if kind not in TOKENIZERS:
        raise ValueError(f"{path}: unknown tokenizer kind {kind!r}; expected one of {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind].load(folder, manifest)


def report_unknown(rates: dict[str, float], paths: dict[str, str], tokenizer: Tokenizer) -> None:
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
