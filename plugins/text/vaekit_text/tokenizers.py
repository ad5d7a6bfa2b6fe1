"""Tokenizers: a PTB-style word vocabulary, SentencePiece, or a Hugging Face tokenizer from a local folder.

Every tokenizer maps text to ids without special tokens (`encode`) and back (`decode`), and has four
distinct special ids: pad (never predicted, masked out of the likelihood), unk, bos (the decoder's
first input) and eos (predicted after the last word, counted in the perplexity).

    tok = build_tokenizer(data_cfg, train_sentences)   # fit on the training split
    tok.save(assets)                                   # assets/tokenizer.json (+ the model files)
    tok = load_tokenizer(assets)                       # what build_model does
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from vaekit.safe_io import atomic_write_bytes, atomic_write_text

MANIFEST = "tokenizer.json"
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
log = logging.getLogger("vaekit.text")
SPM_MAX_SENTENCE_BYTES = 4192  # SentencePiece skips longer training lines (its default max_sentence_length)


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
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        raise NotImplementedError


class WordVocabulary(Tokenizer):
    """Whitespace words, most frequent first, capped at max_size entries (specials included), PTB-compatible.

    The PTB files already write rare words as `<unk>`; that word maps to the unk id, so a PTB vocabulary
    built here has PTB's 10,000 entries (its 9,999 words + <eos>) plus <pad> and <bos>.
    """

    kind = "word"

    def __init__(self, words: list[str], lowercase: bool = False):
        if words[:4] != [PAD, UNK, BOS, EOS]:
            raise ValueError(f"a word vocabulary starts with {PAD}, {UNK}, {BOS}, {EOS}")
        self.words = list(words)
        self.lowercase = lowercase
        self.index = {word: i for i, word in enumerate(self.words)}
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = 0, 1, 2, 3

    @classmethod
    def fit(cls, sentences: Iterable[str], max_size: int, min_freq: int = 1, lowercase: bool = False
            ) -> WordVocabulary:
        """Count words in sentences; keep the max_size - 4 most frequent with count >= min_freq (ties by word)."""
        counts: Counter[str] = Counter()
        for sentence in sentences:
            counts.update((sentence.lower() if lowercase else sentence).split())
        for special in (PAD, UNK, BOS, EOS):
            counts.pop(special, None)
        ranked = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, BOS, EOS] + ranked[: max(0, max_size - 4)], lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def unknown_share(self, sentences: Iterable[str]) -> float:
        """Share of the words in sentences that become <unk> here (a literal <unk> in the text, as PTB has, aside)."""
        unknown = total = 0
        for sentence in sentences:
            words = (sentence.lower() if self.lowercase else sentence).split()
            total += len(words)
            unknown += sum(word not in self.index for word in words)
        return unknown / max(total, 1)

    def encode(self, text: str) -> list[int]:
        if self.lowercase:
            text = text.lower()
        return [self.index.get(word, self.unk_id) for word in text.split()]

    def decode(self, ids: Iterable[int]) -> str:
        skip = {self.pad_id, self.bos_id, self.eos_id}
        return " ".join(self.words[i] for i in ids if i not in skip)

    def save(self, folder: Path) -> None:
        atomic_write_text(folder / "vocab.txt", "\n".join(self.words) + "\n")
        _write_manifest(folder, {"kind": self.kind, "file": "vocab.txt", "lowercase": self.lowercase})

    @classmethod
    def load(cls, folder: Path, manifest: dict) -> WordVocabulary:
        words = (folder / manifest["file"]).read_text(encoding="utf-8").split("\n")
        return cls([w for w in words if w], manifest.get("lowercase", False))


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

    def encode(self, text: str) -> list[int]:
        """Pieces; a literal <unk> in the text (a PTB word) is the one unk id, as the word vocabulary has it."""
        ids: list[int] = []
        for i, part in enumerate(text.split(UNK)):
            ids += ([self.unk_id] if i else []) + (self.sp.encode(part) if part.strip() else [])
        return ids

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

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

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


UNKNOWN_WORDS_WARNING = 0.01  # share of training words outside a word vocabulary worth a warning


def build_tokenizer(data_cfg, train_sentences: list[str], seed: int = 0) -> Tokenizer:
    """The tokenizer the data section asks for, fitted on the training sentences where it learns.

    A corpus too small for data.vocab_size gives a smaller vocabulary: that is said in one line.
    """
    if data_cfg.tokenizer == "word":
        tokenizer = WordVocabulary.fit(train_sentences, data_cfg.vocab_size, data_cfg.min_freq, data_cfg.lowercase)
        unknown = tokenizer.unknown_share(train_sentences)
        if unknown > UNKNOWN_WORDS_WARNING:  # the model would learn to write <unk> where the corpus had words
            log.warning("data.vocab_size=%d: %.1f%% of the words in %s fall outside the vocabulary and become <unk>; "
                        "raise data.vocab_size, lower data.min_freq or use data.tokenizer=sentencepiece",
                        data_cfg.vocab_size, 100 * unknown, data_cfg.train)
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
