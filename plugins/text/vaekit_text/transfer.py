"""Attribute transfer scores of a text CVAE (data.condition_on), the ones `vaekit eval` reports.

Each test sentence is encoded, then decoded (greedy, from the posterior mean) under another label: the other one
of two, or the next in data.labels' order of more. The transfers are scored as the field scores Yelp sentiment
transfer (Li et al. 2018, Dai et al. 2019), and so is copying the input unchanged, the baseline that keeps all of the
content and changes no label:

- transfer_accuracy: share of outputs the label classifier (vaekit_text.scorers) gives the target label;
- transfer_bleu: sacrebleu's corpus BLEU (13a tokenisation, cased) against the human rewrites as data.references
  gives them; transfer_bleu_lowercase the same, case-blind; transfer_self_bleu: against the source sentences;
- transfer_ppl: per-word perplexity of the outputs under the scorers' LSTM language model, beside reference_ppl of
  the human rewrites under the same model;
- copy_*: the same scores of the sources themselves; classifier_test_accuracy: the classifier on the test split;
  same_label_self_bleu: self-BLEU of the sentences decoded under their own label (how much of them z keeps).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from torch.utils.data import Subset

from vaekit.plugin_api import VAE, report_classifier

from .labelled import read_labelled, read_references
from .scorers import DEFAULT_CACHE, fluency_model, label_classifier, perplexity, predict_labels


def target_label(source: int, num_labels: int) -> int:
    """The label a sentence is transferred to: the other of two, the next of more."""
    return (source + 1) % num_labels


def test_items(info: dict, test_path: str | None, dataset) -> list[tuple[int, str, str | None]]:
    """(source label id, sentence, human rewrite or None) of every test sentence: data.references' pairs when the run
    has them, else the test split's labelled sentences."""
    labels = info["labels"]
    if info.get("references"):
        pairs = read_references(info["references"], labels)
        return [(labels.index(label), source, rewrite) for label in labels for source, rewrite in pairs[label]]
    indices = list(range(len(dataset))) if dataset is not None else []
    while isinstance(dataset, Subset):  # `vaekit eval`'s loader may hold a cut of the test split
        indices, dataset = [dataset.indices[i] for i in indices], dataset.dataset
    if getattr(dataset, "labels", None) is not None:
        return [(dataset.labels[i], dataset.sentences[i], None) for i in indices]
    if test_path:
        return [(labels.index(label), sentence, None) for label, sentence in read_labelled(test_path, labels)]
    raise ValueError("the transfer scores need test sentences: give data.test (or data.references)")


@torch.no_grad()
def transfer(plugin, model: VAE, sentences: list[str], targets: list[int], **options) -> list[str]:
    """Each sentence encoded and decoded under its target label id (greedy unless options say otherwise)."""
    model.eval()
    outputs = []
    for start in range(0, len(sentences), 256):
        x = plugin.encode_text(model, sentences[start:start + 256])
        c = torch.tensor(targets[start:start + 256], device=model.device).reshape(-1, 1)
        outputs += plugin.decode_text(model, model.reconstruct(x, c, **options))
    return outputs


def bleu(outputs: list[str], references: list[str], lowercase: bool = False) -> float:
    """sacrebleu's corpus BLEU (0-100, 13a tokenisation) of outputs against one reference each."""
    import sacrebleu  # as reconstruction_metrics does: only evaluation pays for loading it

    # force: the outputs are the corpus's tokenised text, which sacrebleu would otherwise warn of on every call
    return sacrebleu.corpus_bleu(outputs, [references], lowercase=lowercase, force=True).score


def scores(prefix: str, outputs: list[str], items, targets: list[int], classifier, language_model) -> dict:
    """Accuracy (fraction), BLEU to the rewrites, self-BLEU (0-100) and perplexity of outputs, keys prefix_*."""
    predicted = predict_labels(classifier, outputs)
    out = {f"{prefix}_accuracy": (predicted == torch.tensor(targets)).float().mean().item(),
           f"{prefix}_self_bleu": bleu(outputs, [s for _, s, _ in items]),
           f"{prefix}_ppl": perplexity(language_model, outputs)}
    rewrites = [r for _, _, r in items]
    if all(r is not None for r in rewrites):
        out[f"{prefix}_bleu"] = bleu(outputs, rewrites)
        out[f"{prefix}_bleu_lowercase"] = bleu(outputs, rewrites, lowercase=True)
    return out


def transfer_report(plugin, model: VAE, dataset=None, cache_dir: str | Path | None = DEFAULT_CACHE,
                    limit: int | None = None, scorer_sentences: int | None = None,
                    **options) -> tuple[dict, list[dict]]:
    """(scores, rows): the transfer and copy-the-input scores over the test sentences (the first `limit`), and one
    row per sentence {"source", "label", "target", "output", "rewrite"}. The scorers train on the whole training
    split, or on scorer_sentences of it drawn at random (a quick check)."""
    info = model.config["info"]
    labels = info["labels"]
    cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
    train = info["labelled_train"]
    train_pairs = read_labelled(train["path"], labels, train["format"], train["text_field"])
    if scorer_sentences is not None and scorer_sentences < len(train_pairs):
        train_pairs = random.Random(0).sample(train_pairs, scorer_sentences)
    classifier = label_classifier(train_pairs, labels, cache_dir)
    language_model = fluency_model(train_pairs, cache_dir)
    items = test_items(info, info.get("labelled_test"), dataset)
    if limit is not None:  # the first sentences of each label alike, not all of the first label's
        per_label = -(-limit // len(labels))
        by_label = [[item for item in items if item[0] == label] for label in range(len(labels))]
        items = [item for group in by_label for item in group[:per_label]][:limit]
    targets = [target_label(label, len(labels)) for label, _, _ in items]
    sources = [s for _, s, _ in items]
    outputs = transfer(plugin, model, sources, targets, **options)
    result = {"transfer_examples": len(items)}
    result.update(scores("transfer", outputs, items, targets, classifier, language_model))
    result.update(scores("copy", sources, items, targets, classifier, language_model))
    # The same sentences decoded under their own label: how much content the code keeps at all (a ceiling for BLEU)
    kept = transfer(plugin, model, sources, [label for label, _, _ in items], **options)
    result["same_label_self_bleu"] = bleu(kept, sources)
    source_labels = [label for label, _, _ in items]
    result["classifier_test_accuracy"] = (predict_labels(classifier, sources) == torch.tensor(source_labels)
                                          ).float().mean().item()
    rewrites = [r for _, _, r in items]
    if all(r is not None for r in rewrites):
        result["reference_ppl"] = perplexity(language_model, rewrites)
        result["reference_accuracy"] = (predict_labels(classifier, rewrites) == torch.tensor(targets)
                                        ).float().mean().item()
    report_classifier(f"{info['condition_on']} classifier", result["classifier_test_accuracy"],
                      {"transfers": result["transfer_accuracy"]}, examples=len(items))
    rows = [{"source": s, "label": labels[label], "target": labels[t], "output": o, "rewrite": r}
            for (label, s, r), t, o in zip(items, targets, outputs, strict=True)]
    return result, rows


def quote_rows(rows: list[dict], n: int = 10, seed: int = 0) -> list[dict]:
    """n rows drawn at random (seeded), good and bad alike."""
    return random.Random(seed).sample(rows, min(n, len(rows)))
