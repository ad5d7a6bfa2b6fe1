"""The text plugin's eval metrics: perplexity per word, the posterior-collapse flag and reconstruction scores."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

import vaekit
from vaekit.plugin_api import to_device

from .data import SentenceDataset
from .decoding import real_tokens

if TYPE_CHECKING:
    from .plugin import TextPlugin

# A posterior has collapsed when it carries (almost) nothing about the sentence: Bowman et al. report KL
# near 0 for an un-annealed LSTM VAE, and an encoder whose means do not vary with x has no active units.
COLLAPSE_KL_NATS = 0.5
COLLAPSE_MAX_ACTIVE_UNITS = 1


def likelihood_metrics(loader, summary: dict[str, float], use_latent: bool) -> dict:
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
