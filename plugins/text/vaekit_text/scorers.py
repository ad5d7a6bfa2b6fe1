"""Judges of text attribute transfer: a label classifier (Kim 2014's CNN) and an LSTM language model, each trained
once on a labelled corpus's training split and cached under a key of everything it was trained on.

    classifier = label_classifier(train_pairs, labels, cache_dir)   # 97-98% on Yelp's test split
    language_model = fluency_model(train_pairs, cache_dir)
    predict_labels(classifier, sentences)  ->  label ids;  perplexity(language_model, sentences)  ->  per word

Both read words as the corpus writes them (lower-cased, punctuation and "n't" split off: `words`), with their own
vocabulary from the training split, so every model scored on one corpus meets the same judges whatever its tokenizer.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vaekit.plugin_api import cached_classifier, fit_classifier

DEFAULT_CACHE = "~/.cache/vaekit/scorers"
PAD, UNK, EOS = 0, 1, 2  # the scorers' own ids; words start at 3
WORD = re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]")


def words(sentence: str) -> list[str]:
    """A sentence as the Yelp corpus tokenises: lower-cased, punctuation and clitics apart ("didn't" -> did n't)."""
    return WORD.findall(sentence.lower())


class Vocabulary:
    """The `size` most frequent training words (at least 2 occurrences), ids from 3 in frequency order."""

    def __init__(self, sentences: list[str], size: int):
        counts = Counter(w for s in sentences for w in words(s))
        kept = sorted((w for w, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))[: size - 3]
        self.ids = {w: i + 3 for i, w in enumerate(kept)}
        self.size = len(self.ids) + 3

    def encode(self, sentence: str, max_words: int = 50) -> list[int]:
        return [self.ids.get(w, UNK) for w in words(sentence)[:max_words]]


def padded(rows: list[list[int]], min_length: int = 1) -> Tensor:
    """Id lists -> [B, T] right-padded with PAD (T at least min_length)."""
    out = torch.full((len(rows), max(min_length, max(map(len, rows), default=0))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def corpus_key(pairs: list[tuple[str, str]]) -> str:
    """A hash of the (label, sentence) pairs a scorer trains on: the cache key changes with the data."""
    digest = hashlib.sha256()
    for label, sentence in pairs:
        digest.update(f"{label}\t{sentence}\n".encode())
    return digest.hexdigest()[:16]


class LabelClassifier(nn.Module):
    """Kim (2014)'s CNN: embeddings, convolutions of widths 3, 4 and 5, max over time, a linear read-out."""

    version = 1  # part of the cache key: bump when the network or its training changes
    widths = (3, 4, 5)

    def __init__(self, vocab: Vocabulary, num_labels: int, embed: int = 128, filters: int = 100):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab.size, embed, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(embed, filters, w) for w in self.widths)
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(filters * len(self.widths), num_labels)

    def features(self, ids: Tensor) -> Tensor:
        h = self.embed(ids).transpose(1, 2)  # [B, E, T]
        return self.dropout(torch.cat([F.relu(conv(h)).amax(-1) for conv in self.convs], -1))

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.features(ids))


def label_classifier(pairs: list[tuple[str, str]], labels: list[str], cache_dir: str | Path | None, *,
                     epochs: int = 2, seed: int = 0) -> LabelClassifier:
    """The classifier of `labels` trained on the (label, sentence) pairs (a training split), cached in cache_dir."""
    sentences = [s for _, s in pairs]
    vocab = Vocabulary(sentences, 20_000)
    targets = torch.tensor([labels.index(label) for label, _ in pairs])
    ids = [vocab.encode(s) for s in sentences]
    generator = torch.Generator().manual_seed(seed)

    def batches():
        for chunk in torch.randperm(len(ids), generator=generator).split(64):
            yield padded([ids[i] for i in chunk], max(LabelClassifier.widths)), targets[chunk]

    def make():
        torch.manual_seed(seed)
        return LabelClassifier(vocab, len(labels))

    settings = {"scorer": f"LabelClassifier-{LabelClassifier.version}", "data": corpus_key(pairs), "labels": labels,
                "epochs": epochs, "seed": seed}
    return cached_classifier(make, lambda model: fit_classifier(model, batches, epochs, lr=1e-3), settings,
                             cache_dir, name="label-classifier")


@torch.no_grad()
def predict_labels(classifier: LabelClassifier, sentences: list[str]) -> Tensor:
    """The classifier's label id for each sentence: [N]."""
    classifier.eval()
    out = []
    for start in range(0, len(sentences), 256):
        rows = [classifier.vocab.encode(s) for s in sentences[start:start + 256]]
        out.append(classifier(padded(rows, max(LabelClassifier.widths))).argmax(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class LanguageModel(nn.Module):
    """An LSTM language model over the scorers' words with an adaptive softmax: log p(sentence + <eos>) in nats."""

    version = 1

    def __init__(self, vocab: Vocabulary, embed: int = 128, hidden: int = 256):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab.size, embed, padding_idx=PAD)
        self.rnn = nn.LSTM(embed, hidden, batch_first=True)
        cutoffs = [c for c in (1000, 4000) if c < vocab.size - 1] or [vocab.size // 2]
        self.out = nn.AdaptiveLogSoftmaxWithLoss(hidden, vocab.size, cutoffs, div_value=4.0)

    def token_nats(self, rows: list[list[int]]) -> tuple[Tensor, int]:
        """Summed -log p of every word and <eos> of the rows (nats) and how many tokens that was."""
        targets = padded([row + [EOS] for row in rows])
        inputs = torch.cat([torch.full((len(rows), 1), EOS), targets[:, :-1]], 1)  # <eos> starts a sentence too
        hidden = self.rnn(self.embed(inputs))[0]
        real = targets != PAD
        return -self.out(hidden[real], targets[real]).output.sum(), int(real.sum())


def fluency_model(pairs: list[tuple[str, str]], cache_dir: str | Path | None, *, sentences: int = 60_000,
                  seed: int = 0) -> LanguageModel:
    """The language model trained for one epoch on `sentences` training sentences drawn at random, cached."""
    all_sentences = [s for _, s in pairs]
    vocab = Vocabulary(all_sentences, 10_000)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(all_sentences), generator=generator)[:sentences].tolist()

    def fit(model: LanguageModel) -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        model.train()
        for start in range(0, len(chosen), 64):
            nats, tokens = model.token_nats([vocab.encode(all_sentences[i]) for i in chosen[start:start + 64]])
            optimizer.zero_grad(set_to_none=True)
            (nats / tokens).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()

    def make():
        torch.manual_seed(seed)
        return LanguageModel(vocab)

    settings = {"scorer": f"LanguageModel-{LanguageModel.version}", "data": corpus_key(pairs),
                "sentences": sentences, "seed": seed}
    return cached_classifier(make, fit, settings, cache_dir, name="language-model")


@torch.no_grad()
def perplexity(model: LanguageModel, sentences: list[str]) -> float:
    """Per-word perplexity of the sentences under the language model (<eos> counted as a word)."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(sentences), 256):
        nats, count = model.token_nats([model.vocab.encode(s) for s in sentences[start:start + 256]])
        total, tokens = total + float(nats), tokens + count
    return math.exp(total / max(tokens, 1))
