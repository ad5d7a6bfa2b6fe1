"""Masks of real tokens, decoder inputs, per-sentence log-likelihoods; choosing the next token (greedy, or
sampling with temperature, top-k and top-p) and beam search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

Strategy = Literal["greedy", "sample"]  # next_token's; autoregress also takes "beam"
BEAM_SIZE, LENGTH_PENALTY = 5, 1.0  # beam search's defaults: 5 partial sentences kept; scores per token


def real_tokens(x: dict) -> Tensor:
    """Mask [B, T] of the positions inside each sentence (by its length, whatever fills the padding)."""
    positions = torch.arange(x["tokens"].shape[1], device=x["tokens"].device)
    return positions.unsqueeze(0) < x["lengths"].to(x["tokens"].device).unsqueeze(1)


# A caller may decode thousands of copies of a batch at once (IW NLL with an explicit chunk_size), so log_prob
# runs the decoder over at most rows x T x vocab = this many positions-times-vocabulary at a time; the output
# layer then scores those rows' tokens in smaller blocks still (LOGITS_PER_TOKEN_CHUNK).
LOGITS_PER_CHUNK = 64 * 2**20


def chunked_rows(n_rows: int, length: int, vocab: int) -> int:
    """Rows per chunk so that rows x length x vocab logits stay under LOGITS_PER_CHUNK."""
    return max(1, min(n_rows, LOGITS_PER_CHUNK // max(1, length * vocab)))


def decoder_inputs(targets: Tensor, bos_id: int, pad_id: int, unk_id: int, word_dropout: float = 0.0) -> Tensor:
    """<bos> + the sentence without its last token: [B, T]; with word_dropout, inputs become <unk> at that rate."""
    inputs = torch.cat([torch.full_like(targets[:, :1], bos_id), targets[:, :-1]], 1)
    if word_dropout > 0:
        drop = torch.rand(inputs.shape, device=inputs.device) < word_dropout
        drop[:, 0] = False  # <bos> always stays: it is the only input that says "a sentence starts"
        inputs = inputs.masked_fill(drop & (inputs != pad_id), unk_id)
    return inputs


# The output layer scores at most this many logits at a time (~28 MB fp32). Bigger blocks go back to the OS when
# freed and are page-faulted in again for the next chunk (see vaekit.training.memory): 14% of a PTB IW evaluation's CPU.
LOGITS_PER_TOKEN_CHUNK = 7 * 2**20


def sentence_log_prob(hidden: Tensor, to_logits: Callable[[Tensor], Tensor], targets: Tensor, mask: Tensor,
                      vocab: int) -> Tensor:
    """log p(sentence) [B] nats from decoder states [B, T, H]: sum of log-softmax at the targets, real tokens only.

    Only the real tokens' states go through the output layer, so padding costs no vocabulary-sized matmul or
    softmax (about half the positions of a PTB batch are padding). An output layer with its own
    token_log_prob (the adaptive softmax) scores the targets without the full distribution.
    """
    rows = torch.arange(targets.shape[0], device=targets.device).unsqueeze(1).expand_as(targets)[mask]
    states, wanted, step = hidden[mask], targets[mask], max(1, LOGITS_PER_TOKEN_CHUNK // vocab)
    score = getattr(to_logits, "token_log_prob", None) or \
        (lambda h, t: -F.cross_entropy(to_logits(h), t, reduction="none"))
    token_log_p = torch.cat([score(states[i:i + step], wanted[i:i + step]) for i in range(0, len(wanted), step)])
    per_sentence = torch.zeros(targets.shape[0], dtype=token_log_p.dtype, device=targets.device)
    return per_sentence.index_add_(0, rows, token_log_p)


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set logits outside the k best / the smallest set with probability >= top_p to -inf: [B, V]."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, -1).cumsum(-1)
        # Drop a token when the tokens ranked before it already reach top_p; the best token always stays.
        drop_sorted = (cumulative - torch.softmax(sorted_logits, -1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: Tensor, banned: list[int], strategy: Strategy = "greedy", temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """One token id per row of logits [B, V]; banned ids (pad, bos) are never chosen."""
    logits = logits.float().clone()
    logits[:, banned] = float("-inf")
    if strategy == "greedy":
        return logits.argmax(-1)
    if strategy != "sample":
        raise ValueError(f"strategy: expected 'greedy' or 'sample', got {strategy!r}")
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    logits = filter_logits(logits / temperature, top_k, top_p)
    return torch.distributions.Categorical(logits=logits).sample()


def beam_rows(options: dict) -> int:
    """How many decoder rows each sentence needs under these decoding options: the beam's size, or 1."""
    return (options.get("beam_size") or BEAM_SIZE) if options.get("strategy") == "beam" else 1


def autoregress(step, first_input: Tensor, max_length: int, eos_id: int, pad_id: int, bos_id: int,
                reorder=None, **options) -> dict:
    """Run step(inputs [B], state) -> (logits [B, V], state) until every row emitted <eos> or max_length tokens.

    Returns x in the data's own format: {"tokens": [B, T] ids ending in <eos> (pad after), "lengths": [B]}.
    strategy='beam' runs beam_search instead: step then reads beam_rows(options) rows per sentence and
    reorder(state, rows) keeps the states of the rows that survive.
    """
    beam_size, length_penalty = beam_rows(options), options.pop("length_penalty", LENGTH_PENALTY)
    options.pop("beam_size", None)
    if options.get("strategy") == "beam":
        if reorder is None:
            raise ValueError("strategy: this decoder cannot run beam search; use greedy or sample")
        return beam_search(step, reorder, first_input, max_length, eos_id, pad_id, bos_id, beam_size, length_penalty)
    batch = first_input.shape[0]
    inputs, state = first_input, None
    done = torch.zeros(batch, dtype=torch.bool, device=first_input.device)
    lengths = torch.full((batch,), max_length, dtype=torch.long, device=first_input.device)
    out = []
    for t in range(max_length):
        logits, state = step(inputs, state)
        token = next_token(logits, [pad_id, bos_id], **options)
        if t == max_length - 1:  # the last slot always closes the sentence
            token = torch.full_like(token, eos_id)
        token = token.masked_fill(done, pad_id)
        out.append(token)
        finished = (token == eos_id) & ~done
        lengths = torch.where(finished, torch.full_like(lengths, t + 1), lengths)
        done = done | finished
        if bool(done.all()):
            break
        inputs = token
    tokens = torch.stack(out, 1)
    return {"tokens": tokens, "lengths": lengths}


def beam_search(step, reorder, first_input: Tensor, max_length: int, eos_id: int, pad_id: int, bos_id: int,
                beam_size: int = BEAM_SIZE, length_penalty: float = LENGTH_PENALTY) -> dict:
    """The most probable sentence per row that a beam of `beam_size` partial sentences finds, as autoregress returns.

    Partial and finished sentences compete on log p / length ** length_penalty (1: nats per token), so a short
    finished sentence does not crowd out longer ones still being written; a finished one keeps its score and
    length. step reads [B * beam_size] inputs (row b's beams are rows b * beam_size ...); reorder(state, rows)
    returns the state of those rows. With beam_size 1 this is greedy decoding.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size: expected at least 1, got {beam_size}")
    batch, k, device = first_input.shape[0], beam_size, first_input.device
    inputs, state = first_input.repeat_interleave(k), None
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the k copies of <bos> are one beam: the others start out of the race
    lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
    done = torch.zeros(batch, k, dtype=torch.bool, device=device)
    history = torch.zeros(batch, k, 0, dtype=torch.long, device=device)
    offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)
    for t in range(max_length):
        logits, state = step(inputs, state)
        log_p = torch.log_softmax(logits.float(), -1).view(batch, k, -1)
        vocab = log_p.shape[-1]
        log_p[..., [pad_id, bos_id]] = float("-inf")
        if t == max_length - 1:  # the last slot always closes the sentence
            closing = torch.full_like(log_p, float("-inf"))
            closing[..., eos_id] = log_p[..., eos_id]
            log_p = closing
        # A finished beam goes on with padding only, at no cost: one candidate, its score and length unchanged.
        padding_only = torch.full((vocab,), float("-inf"), device=device)
        padding_only[pad_id] = 0.0
        log_p = torch.where(done.unsqueeze(-1), padding_only, log_p)
        candidate = scores.unsqueeze(-1) + log_p  # [B, k, V] nats
        grown = torch.where(done, lengths, lengths + 1)
        ranked = candidate / grown.unsqueeze(-1).float() ** length_penalty
        chosen = ranked.view(batch, -1).topk(k, -1).indices  # [B, k]
        parent, token = chosen // vocab, chosen % vocab
        scores = candidate.view(batch, -1).gather(1, chosen)
        lengths = grown.gather(1, parent)
        done = done.gather(1, parent) | (token == eos_id)
        history = torch.cat([history.gather(1, parent.unsqueeze(-1).expand_as(history)), token.unsqueeze(-1)], 2)
        if bool(done.all()):
            break
        state = reorder(state, (parent + offsets).view(-1))
        inputs = token.view(-1)
    best = (scores / lengths.clamp(min=1).float() ** length_penalty).argmax(1)
    rows = torch.arange(batch, device=device)
    return {"tokens": history[rows, best], "lengths": lengths[rows, best]}
