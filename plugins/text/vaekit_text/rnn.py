"""The LSTM/GRU sentence VAE of Bowman et al. 2016.

Encoder: embeddings -> (bi)LSTM/GRU -> the states at each sentence's last real token (the backward
direction reads the sentence reversed within its length, so padding is never read), or a pooling over every
state -> mean and log-variance of q(z|x). Decoder: starts from a state computed from z and
sees z concatenated to every input embedding (with latent_slots, its states also read z as memory vectors);
the inputs are <bos> + the sentence, the targets the sentence + <eos>; word dropout replaces inputs by <unk>
while training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import vaekit
from vaekit.plugin_api import ConditionEmbedding

from .decoding import autoregress, beam_rows, chunked_rows, decoder_inputs, real_tokens, sentence_log_prob


def make_rnn(cell: str, input_size: int, hidden: int, layers: int) -> nn.RNNBase:
    rnn = nn.LSTM if cell == "lstm" else nn.GRU
    return rnn(input_size, hidden, num_layers=layers, batch_first=True)


class StandardNormalEncoder(nn.Module):
    """q(z|x) = N(0, I) for every x: turns the VAE into a plain language model (KL exactly 0)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def forward(self, x: dict, c=None) -> vaekit.DiagonalGaussian:
        shape = (x["tokens"].shape[0], self.latent_dim)
        return vaekit.DiagonalGaussian.standard(shape, device=self._anchor.device)


def reverse_within_lengths(h: Tensor, lengths: Tensor) -> Tensor:
    """Each row's first `length` steps in reverse order, padding left in place: [B, T, F] (its own inverse)."""
    positions = torch.arange(h.shape[1], device=h.device).unsqueeze(0)
    ends = lengths.unsqueeze(1)
    order = torch.where(positions < ends, ends - 1 - positions, positions)
    return h.gather(1, order.unsqueeze(-1).expand_as(h))


class AttentionPooling(nn.Module):
    """K learned queries, each a softmax-weighted read over every real token's state: [B, T, F] -> [B, K * F]."""

    def __init__(self, features: int, queries: int):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, features) / features ** 0.5)
        self.keys = nn.Linear(features, features, bias=False)

    def forward(self, h: Tensor, real: Tensor) -> Tensor:
        scores = (self.keys(h) @ self.queries.T / h.shape[-1] ** 0.5).masked_fill(~real.unsqueeze(-1), float("-inf"))
        return (torch.softmax(scores, 1).transpose(1, 2) @ h).flatten(1)  # weights over positions, per query


class RNNEncoder(nn.Module):
    """Tokens -> q(z|x) from the top layer's states at each sentence's end, both directions: the bidirectional
    LSTM/GRU of torch (same layers, same wiring), run without packing.

    Each layer runs over the padded batch in one fused call (several times faster on a CPU than a packed
    sequence). A causal RNN's state at position length - 1 has not seen the padding after it; the backward
    direction runs on each sentence reversed within its own length, so it too starts at the sentence's end.
    """

    def __init__(self, vocab_size: int, pad_id: int, cfg):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        directions = 2 if cfg.bidirectional_encoder else 1
        units = cfg.encoder_hidden_dim or cfg.hidden_dim
        sizes = [cfg.embed_dim] + [directions * units] * (cfg.num_layers - 1)
        self.forward_layers = nn.ModuleList(make_rnn(cfg.cell, n, units, 1) for n in sizes)
        self.backward_layers = nn.ModuleList(make_rnn(cfg.cell, n, units, 1) for n in sizes) \
            if directions == 2 else None
        self.pooling = cfg.encoder_pooling
        # attention: the end states, as `last`, and beside them K reads that can each pick out other positions
        queries = (cfg.encoder_queries or 8) if self.pooling == "attention" else 0
        self.attention = AttentionPooling(directions * units, queries) if queries else None
        self.to_posterior = nn.Linear((1 + queries) * directions * units, 2 * cfg.latent_dim)

    def forward(self, x: dict, c=None) -> vaekit.DiagonalGaussian:
        lengths = x["lengths"].to(x["tokens"].device)
        h = self.embed(x["tokens"])
        for i, layer in enumerate(self.forward_layers):
            ahead = layer(h)[0]
            if self.backward_layers is None:
                h = ahead
            else:  # the backward direction's states, put back in sentence order beside the forward ones
                back = reverse_within_lengths(self.backward_layers[i](reverse_within_lengths(h, lengths))[0], lengths)
                h = torch.cat([ahead, back], -1)
        if self.pooling in ("last", "attention"):
            last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, ahead.shape[-1])
            final = ahead.gather(1, last).squeeze(1)  # forward: after the last real token
            if self.backward_layers is not None:
                final = torch.cat([final, back[:, 0]], -1)  # backward: after reading back to the first token
            if self.attention is not None:
                final = torch.cat([final, self.attention(h, real_tokens(x))], -1)
        else:  # Long et al. 2019: every position's state reaches q(z|x), not only the one that read it all
            real = real_tokens(x).unsqueeze(-1)
            if self.pooling == "mean":
                final = (h * real).sum(1) / real.sum(1).clamp(min=1)
            else:
                final = h.masked_fill(~real, float("-inf")).amax(1)
        mean, logvar = self.to_posterior(final).chunk(2, dim=-1)
        return vaekit.DiagonalGaussian(mean, logvar)


def bag_of_words_log_prob(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """log p(bag of words | z) [B] nats: every real token scored by one softmax over z's logits [B, V]."""
    log_p = torch.log_softmax(logits.float(), -1).gather(1, targets)
    return (log_p * mask).sum(1)


def adaptive_cutoffs(vocab_size: int, cutoffs: list[int]) -> list[int]:
    """The cluster boundaries of the adaptive softmax: the given ids, or 20% and 60% of the vocabulary."""
    chosen = list(cutoffs) or sorted({max(1, round(vocab_size * f)) for f in (0.2, 0.6)} - {vocab_size})
    if not chosen or chosen[-1] >= vocab_size:
        raise ValueError(f"model.adaptive_cutoffs: expected ids between 1 and the vocabulary's {vocab_size - 1}, "
                         f"got {chosen}")
    return chosen


class AdaptiveOutput(nn.Module):
    """Adaptive softmax (Grave et al. 2017): a full softmax over the most frequent ids and one entry per cluster
    of rarer ids, each cluster scored through a narrower projection. The log-probabilities are exact and sum to
    one; training touches a cluster only for the tokens in it, so the output layer costs a fraction of a full one.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, cutoffs: list[int]):
        super().__init__()
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(hidden_dim, vocab_size, cutoffs, div_value=4.0)
        self.out_features = vocab_size

    def forward(self, hidden: Tensor) -> Tensor:
        """log p(next token) [..., V] nats from states [..., H]: usable wherever logits are."""
        with torch.autocast(hidden.device.type, enabled=False):
            flat = self.softmax.log_prob(hidden.reshape(-1, hidden.shape[-1]).float())
        return flat.reshape(*hidden.shape[:-1], -1)

    def token_log_prob(self, hidden: Tensor, targets: Tensor) -> Tensor:
        """log p(target) [N] nats for states [N, H], scoring only the clusters the targets are in."""
        # In fp32 whatever trainer.precision says: torch's module mixes dtypes under bf16 autocast and fails.
        with torch.autocast(hidden.device.type, enabled=False):
            return self.softmax(hidden.float(), targets).output


class LatentMemory(nn.Module):
    """z [B, D] as K memory vectors that each decoder state reads by attention (Luong et al. 2015's output layer):
    states [B, T, H] -> [B, T, H]. The LSTM then need only track where in the sentence it is, not carry the words."""

    def __init__(self, latent_dim: int, slots: int, hidden_dim: int):
        super().__init__()
        self.slots, self.hidden_dim = slots, hidden_dim
        self.memory = nn.Linear(latent_dim, slots * hidden_dim)
        self.query = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.combine = nn.Linear(2 * hidden_dim, hidden_dim)

    def vectors(self, z: Tensor) -> Tensor:
        """The memory [B, K, H] for latents z [B, D]."""
        return torch.tanh(self.memory(z)).view(z.shape[0], self.slots, self.hidden_dim)

    def forward(self, states: Tensor, memory: Tensor) -> Tensor:
        scores = self.query(states) @ memory.transpose(1, 2) / self.hidden_dim ** 0.5  # [B, T, K]
        read = torch.softmax(scores, -1) @ memory  # [B, T, H]
        return torch.tanh(self.combine(torch.cat([states, read], -1)))


class RNNDecoder(nn.Module):
    """p(x|z): an LSTM/GRU language model conditioned on z (initial state + input at every step; with
    latent_slots, a memory read before the output layer)."""

    def __init__(self, vocab_size: int, specials: dict, max_length: int, cfg, num_labels: int | None = None):
        super().__init__()
        self.pad_id, self.unk_id = specials["pad_id"], specials["unk_id"]
        self.bos_id, self.eos_id = specials["bos_id"], specials["eos_id"]
        self.max_length = max_length
        self.cell, self.num_layers, self.hidden_dim = cfg.cell, cfg.num_layers, cfg.hidden_dim
        self.use_latent = cfg.use_latent
        self.word_dropout = cfg.word_dropout
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=self.pad_id)
        # A CVAE on a label (a sentiment): its embedding joins z wherever the decoder reads z, so a decode under
        # another label writes the same content in that label's style
        self.condition = ConditionEmbedding(num_labels, cfg.condition_dim) if num_labels else None
        code_dim = cfg.latent_dim + (cfg.condition_dim if num_labels else 0)
        self.rnn = make_rnn(cfg.cell, cfg.embed_dim + code_dim, cfg.hidden_dim, cfg.num_layers)
        states = 2 if cfg.cell == "lstm" else 1
        self.to_state = nn.Linear(code_dim, states * cfg.num_layers * cfg.hidden_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.latent_memory = LatentMemory(cfg.latent_dim, cfg.latent_slots, cfg.hidden_dim) \
            if cfg.latent_slots else None
        self.out = nn.Linear(cfg.hidden_dim, vocab_size) if cfg.output == "softmax" else \
            AdaptiveOutput(cfg.hidden_dim, vocab_size, adaptive_cutoffs(vocab_size, cfg.adaptive_cutoffs))
        self.likelihood = vaekit.Categorical(pad_id=self.pad_id)
        self.bow_weight = cfg.bow_weight
        self.bow = nn.Linear(cfg.latent_dim, vocab_size) if cfg.bow_weight > 0 else None
        self.tokenizer = None  # set by the plugin: turns generated ids into text

    def initial_state(self, z: Tensor):
        """(h0, c0) for an LSTM or h0 for a GRU from z: [layers, B, H] each."""
        state = torch.tanh(self.to_state(z)).reshape(z.shape[0], -1, self.num_layers, self.hidden_dim)
        state = state.permute(1, 2, 0, 3).contiguous()  # [states, layers, B, H]
        return (state[0], state[1]) if self.cell == "lstm" else state[0]

    def _latent(self, z: Tensor) -> Tensor:
        return z if self.use_latent else torch.zeros_like(z)

    def _code(self, z: Tensor, c: Tensor | None) -> Tensor:
        """What the RNN reads of z [B, D]: z itself, or z beside the label's embedding for a CVAE."""
        if self.condition is None:
            return z
        if c is None:
            raise ValueError("this text model is conditioned on a label: give a condition (--condition NAME=VALUE)")
        return torch.cat([z, self.condition(c)], -1)

    def hidden(self, inputs: Tensor, z: Tensor, state=None, memory: Tensor | None = None,
               c: Tensor | None = None) -> tuple[Tensor, object]:
        """Top-layer states [B, T, H] for inputs [B, T] given z [B, D] (and a CVAE's labels c) after dropout; also
        the final state. memory: z's latent memory, when the caller has it already (generation computes it once)."""
        z = self._latent(z)
        code = self._code(z, c)
        emb = self.dropout(self.embed(inputs))
        rnn_in = torch.cat([emb, code.unsqueeze(1).expand(-1, inputs.shape[1], -1)], -1)
        hidden, state = self.rnn(rnn_in, self.initial_state(code) if state is None else state)
        if self.latent_memory is not None:
            hidden = self.latent_memory(hidden, self.latent_memory.vectors(z) if memory is None else memory)
        return self.dropout(hidden), state

    def logits(self, inputs: Tensor, z: Tensor, state=None, memory: Tensor | None = None,
               c: Tensor | None = None) -> tuple[Tensor, object]:
        """Next-token logits [B, T, V] for inputs [B, T] given z [B, D] (and a CVAE's labels c); also the final
        state."""
        hidden, state = self.hidden(inputs, z, state, memory, c)
        return self.out(hidden), state

    def log_prob(self, x: dict, z: Tensor, c=None) -> Tensor:
        """log p(x|z) per sentence, <eos> included, padding excluded: [B] nats."""
        targets = x["tokens"]
        inputs = decoder_inputs(targets, self.bos_id, self.pad_id, self.unk_id,
                                self.word_dropout if self.training else 0.0)
        vocab = self.out.out_features
        mask, rows = real_tokens(x), chunked_rows(*targets.shape, vocab)
        log_p = torch.cat([sentence_log_prob(self.hidden(inputs[i:i + rows], z[i:i + rows], c=None if c is None
                                                         else c[i:i + rows])[0], self.out,
                                             targets[i:i + rows], mask[i:i + rows], vocab)
                           for i in range(0, targets.shape[0], rows)])
        if self.bow is not None and self.training:  # an auxiliary loss only: evaluation scores log p(x|z) alone
            log_p = log_p + self.bow_weight * bag_of_words_log_prob(self.bow(z), targets, mask)
        return log_p

    @torch.no_grad()
    def generate(self, z: Tensor, c=None, max_length: int | None = None, **options) -> dict:
        """Sentences for latents z [B, D] as {"tokens": [B, T], "lengths": [B]} (greedy unless strategy='sample' or
        'beam')."""
        z_rows = z.repeat_interleave(beam_rows(options), 0)  # a beam decodes each latent's rows side by side
        c_rows = None if c is None or self.condition is None else c.repeat_interleave(beam_rows(options), 0)
        # A beam's rows of one latent share its z, so reordering them leaves this row-aligned memory right. It is
        # made from z as hidden() sees it (zeros for a language model), so generation scores as log_prob does.
        memory = self.latent_memory.vectors(self._latent(z_rows)) if self.latent_memory is not None else None

        def step(inputs, state):
            logits, state = self.logits(inputs.unsqueeze(1), z_rows, state, memory, c_rows)
            return logits[:, -1], state

        def reorder(state, rows):  # LSTM (h, c) or GRU h: [layers, rows, H]
            return tuple(s.index_select(1, rows) for s in state) if isinstance(state, tuple) \
                else state.index_select(1, rows)

        first = torch.full((z.shape[0],), self.bos_id, dtype=torch.long, device=z.device)
        return autoregress(step, first, max_length or self.max_length, self.eos_id, self.pad_id, self.bos_id,
                           reorder, **options)
