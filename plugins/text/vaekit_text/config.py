"""The text plugin's recipe sections: `data:` (files, tokenizer, lengths) and `model:` (rnn or transformer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Literal


@dataclass
class TextDataConfig:
    """Where sentences come from and how they become token ids.

    train / val / test: a text file with one sentence per line (PTB's ptb.train.txt), a folder of .txt
    files, or a .jsonl file whose objects carry the sentence under `text_field`.
    """

    # A path with {label} in it is one file per label (checked in __post_init__, each label's file must exist)
    train: str = ""
    val: str | None = None
    test: str | None = None
    format: Literal["auto", "lines", "jsonl", "tsv"] = "auto"  # auto: .jsonl JSONL, .tsv label<TAB>sentence, else lines
    # A labelled corpus (vaekit_text.labelled): the label's name ("sentiment"); the model is a CVAE on it
    condition_on: str | None = None
    labels: list[str] = field(default_factory=list)  # label values in id order ({label} paths need them)
    # source<TAB>human rewrite with another label, one file per source label: `vaekit eval` scores transfers on them
    references: str | None = None
    text_field: str = "text"
    tokenizer: Literal["word", "sentencepiece", "hf"] = "word"
    vocab_size: int = 10_002  # word: most entries kept, specials included; sentencepiece: pieces to learn
    min_freq: int = 1  # word: rarer words become <unk>
    lowercase: bool = False  # word
    # word: "punctuation" splits it off words ("moon!" -> "moon !"; PTB's tokens are left as they are),
    # "whitespace" takes the text's own words (a corpus tokenised already)
    word_split: Literal["punctuation", "whitespace"] = "punctuation"
    spm_model_type: Literal["unigram", "bpe"] = "unigram"
    spm_character_coverage: float = 1.0
    hf_tokenizer: str | None = field(default=None, metadata={"must_exist": True})  # local folder
    max_length: int = 64  # tokens per sentence, <eos> included
    long_lines: Literal["filter", "truncate"] = "filter"

    def __post_init__(self):
        if not self.train:
            raise ValueError("train: give the training text (a .txt file, a folder of .txt or a .jsonl file)")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels: a value is given twice in {self.labels}")
        if self.references is not None and "{label}" not in self.references:
            raise ValueError("references: expected one file per source label, a path with {label} in it")
        for key in ("train", "val", "test", "references"):
            path = getattr(self, key)
            if path is not None and "{label}" in path and not self.labels:
                raise ValueError(f"labels: the {{label}} in {key} needs the label values, e.g. labels: [neg, pos]")
            for one in [] if path is None else [path.replace("{label}", label) for label in self.labels or [""]]:
                if not Path(one).exists():
                    raise ValueError(f"{key}: {one} does not exist")
        if self.tokenizer == "hf" and not self.hf_tokenizer:
            raise ValueError("hf_tokenizer: tokenizer 'hf' needs a local tokenizer folder")
        if self.max_length < 2:
            raise ValueError(f"max_length: expected at least 2 tokens, got {self.max_length}")
        if self.vocab_size < 5:
            raise ValueError(f"vocab_size: expected at least 5, got {self.vocab_size}")


@dataclass
class TextModelConfig:
    """The sentence VAE.

    rnn: LSTM/GRU encoder -> q(z|x); decoder starts from a state computed from z and sees z beside
    every input embedding (Bowman et al. 2016). transformer: BERT-style encoder, mean-pooled ->
    q(z|x); GPT-2-style decoder with z as a prefix (memory) vector and added to every input
    embedding (Optimus, Li et al. 2020).
    """

    arch: Literal["rnn", "transformer"] = "rnn"
    latent_dim: int = 32
    embed_dim: int = 256  # rnn
    hidden_dim: int = 512  # rnn: LSTM/GRU units; transformer: d_model
    # rnn: the encoder's units per direction (None: hidden_dim). The bidirectional encoder runs two LSTMs to the
    # decoder's one, so a narrower one makes a VAE step cost nearer a language model's
    encoder_hidden_dim: int | None = None
    cell: Literal["lstm", "gru"] = "lstm"
    num_layers: int = 1
    bidirectional_encoder: bool = True  # rnn
    num_heads: int = 4  # transformer
    ff_dim: int = 1024  # transformer
    dropout: float = 0.0  # on embeddings and decoder outputs
    word_dropout: float = 0.0  # probability that a decoder input word becomes <unk> while training
    pretrained_encoder: str | None = None  # transformer: local Hugging Face encoder folder (BERT-like)
    use_latent: bool = True  # False: a plain language model with the same decoder (z ignored, KL 0)
    # rnn: the end states, mean/max over all states, or attention: the end states and encoder_queries learned reads;
    # the transformer always takes the mean over its real tokens
    encoder_pooling: Literal["last", "mean", "max", "attention"] = "last"
    encoder_queries: int | None = None  # attention's reads (None: 8)
    # rnn: the encoder reads the decoder's word embeddings, which every token's likelihood trains, instead of its
    # own table, which learns only through z
    share_embeddings: bool = False
    # rnn: 0 - z enters as the decoder's initial state and beside every input; K - also as K memory vectors that
    # each decoder state reads by attention before the output layer
    latent_slots: int = 0
    bow_weight: float = 0.0  # training only: + weight * log p(bag of words | z) (Zhao et al. 2017), nats
    # rnn: "adaptive" is Grave et al.'s adaptive softmax (exact log-probs, ~5x cheaper output layer on a CPU at
    # 10k words); it splits ids in frequency order, as the word and SentencePiece vocabularies are
    output: Literal["softmax", "adaptive"] = "softmax"
    adaptive_cutoffs: list[int] = field(default_factory=list)  # ids where clusters start; [] = 20% and 60% of vocab
    # rnn, a labelled corpus (data.condition_on): the label's embedding, read by the decoder beside z
    condition_dim: int = 16

    def __post_init__(self):
        if not 0.0 <= self.word_dropout <= 1.0:
            raise ValueError(f"word_dropout: expected a probability in [0, 1], got {self.word_dropout}")
        if self.bow_weight < 0:
            raise ValueError(f"bow_weight: expected 0 or more, got {self.bow_weight}")
        if self.output == "adaptive" and self.arch != "rnn":
            raise ValueError("output: 'adaptive' is for the rnn decoder (the transformer ties its output layer to "
                             "its input embeddings); use output: softmax")
        if any(b <= a for a, b in pairwise(self.adaptive_cutoffs)) \
                or any(c < 1 for c in self.adaptive_cutoffs):
            raise ValueError(f"adaptive_cutoffs: expected increasing ids of 1 or more, got {self.adaptive_cutoffs}")
        if self.encoder_queries is not None and self.encoder_pooling != "attention":
            raise ValueError("encoder_queries: only with encoder_pooling: attention")
        if self.encoder_queries is not None and self.encoder_queries < 1:
            raise ValueError(f"encoder_queries: expected 1 or more, got {self.encoder_queries}")
        if self.latent_slots < 0 or (self.latent_slots and self.arch != "rnn"):
            raise ValueError(f"latent_slots: expected 0 or more memory vectors, for the rnn decoder; got "
                             f"{self.latent_slots} ({self.arch})")
        if self.arch == "transformer" and self.encoder_pooling not in ("last", "mean"):
            # "last" is the default, so it cannot be an error; the transformer always mean-pools
            raise ValueError(f"encoder_pooling: the transformer encoder mean-pools its tokens; "
                             f"{self.encoder_pooling!r} is for the rnn encoder")
        if self.share_embeddings and self.arch != "rnn":
            raise ValueError("share_embeddings: is for the rnn encoder and decoder")
        if self.encoder_hidden_dim is not None and self.arch != "rnn":
            raise ValueError("encoder_hidden_dim: is for the rnn encoder; the transformer's width is hidden_dim")
        if self.encoder_hidden_dim is not None and self.encoder_hidden_dim < 1:
            raise ValueError(f"encoder_hidden_dim: expected 1 or more units (or null for hidden_dim), "
                             f"got {self.encoder_hidden_dim}")
        if self.arch == "transformer" and self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim: {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
