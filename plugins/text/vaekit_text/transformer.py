"""The Transformer sentence VAE, Optimus-style (Li et al. 2020), built with transformers from configs (no download).

Encoder: a BERT-style model (from a BertConfig, or a local pretrained folder) -> mean over the real
tokens -> q(z|x). Decoder: a GPT-2-style model whose input is [z-prefix, <bos>, sentence[:-1]]: z
becomes one extra "memory" position every token attends to, and is also added to every input
embedding. Padding sits on the right of a causal decoder, so it never changes a sentence's score.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

import vaekit
from vaekit.plugin_api import atomic_write_text, one_line

from .decoding import autoregress, beam_rows, chunked_rows, decoder_inputs, real_tokens, sentence_log_prob

ENCODER_CONFIG = "pretrained_encoder_config.json"


def _cache_name() -> str:
    """What GPT2Model calls its key/value cache, argument and output: `cache` from transformers 5.2x, before that
    `past_key_values` (later releases drop the old name)."""
    import inspect

    from transformers import GPT2Model

    return "cache" if "cache" in inspect.signature(GPT2Model.forward).parameters else "past_key_values"


_CACHE = _cache_name()


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def _pretrained_encoder(folder: str) -> nn.Module:
    """A local Hugging Face encoder from its safetensors weights only: a pytorch_model.bin is a pickle, never loaded."""
    from transformers import AutoModel

    if not any(Path(folder).glob("*.safetensors")):
        raise ValueError(f"model.pretrained_encoder: {folder} has no .safetensors weights; vaekit never loads "
                         "pickled weights (pytorch_model.bin): convert them to safetensors first")
    try:
        return AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model.pretrained_encoder: {folder}: not a loadable encoder "
                         f"({one_line(exc, 300)})") from None


class TransformerEncoder(nn.Module):
    """BERT-style encoder, mean-pooled over non-pad tokens -> q(z|x)."""

    def __init__(self, vocab_size: int, pad_id: int, max_length: int, cfg, assets: Path):
        super().__init__()
        from transformers import AutoConfig, AutoModel, BertConfig, BertModel

        _quiet_transformers()
        saved = assets / ENCODER_CONFIG
        if cfg.pretrained_encoder and Path(cfg.pretrained_encoder).is_dir():
            # Training: start from the pretrained weights and keep its config with the run, so the model can be
            # rebuilt (and its trained weights loaded) where that folder does not exist.
            self.bert = _pretrained_encoder(cfg.pretrained_encoder)
            if assets.is_dir() and not saved.exists():
                atomic_write_text(saved, self.bert.config.to_json_string())
        elif cfg.pretrained_encoder and saved.is_file():
            self.bert = AutoModel.from_config(AutoConfig.for_model(**json.loads(saved.read_text())))
        elif cfg.pretrained_encoder:
            raise ValueError(f"model.pretrained_encoder: {cfg.pretrained_encoder} is not a folder and the run's "
                             f"assets hold no {ENCODER_CONFIG}")
        else:
            config = BertConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_dim, num_hidden_layers=cfg.num_layers,
                                num_attention_heads=cfg.num_heads, intermediate_size=cfg.ff_dim,
                                max_position_embeddings=max_length + 2, pad_token_id=pad_id,
                                hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
            self.bert = BertModel(config, add_pooling_layer=False)
        if self.bert.config.vocab_size < vocab_size:
            raise ValueError(f"model.pretrained_encoder: its vocabulary ({self.bert.config.vocab_size}) is smaller "
                             f"than the tokenizer's ({vocab_size}); use the encoder's tokenizer (data.hf_tokenizer)")
        self.to_posterior = nn.Linear(self.bert.config.hidden_size, 2 * cfg.latent_dim)

    def forward(self, x: dict, c=None) -> vaekit.DiagonalGaussian:
        tokens = x["tokens"]
        mask = real_tokens(x).long()
        hidden = self.bert(input_ids=tokens, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        mean, logvar = self.to_posterior(pooled).chunk(2, dim=-1)
        return vaekit.DiagonalGaussian(mean, logvar)


class TransformerDecoder(nn.Module):
    """p(x|z): a GPT-2-style causal Transformer with z as a prefix position and added to every embedding."""

    def __init__(self, vocab_size: int, specials: dict, max_length: int, cfg):
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        _quiet_transformers()
        self.pad_id, self.unk_id = specials["pad_id"], specials["unk_id"]
        self.bos_id, self.eos_id = specials["bos_id"], specials["eos_id"]
        self.max_length = max_length
        self.use_latent = cfg.use_latent
        self.word_dropout = cfg.word_dropout
        config = GPT2Config(vocab_size=vocab_size, n_positions=max_length + 1, n_embd=cfg.hidden_dim,
                            n_layer=cfg.num_layers, n_head=cfg.num_heads, n_inner=cfg.ff_dim,
                            resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                            bos_token_id=self.bos_id, eos_token_id=self.eos_id, pad_token_id=self.pad_id)
        self.gpt = GPT2Model(config)
        self.z_prefix = nn.Linear(cfg.latent_dim, cfg.hidden_dim)  # the memory position
        self.z_embed = nn.Linear(cfg.latent_dim, cfg.hidden_dim, bias=False)  # added to every input embedding
        # z enters at the scale of GPT-2's embeddings: for z ~ N(0, I) each term has std 0.02, as a word's does.
        # nn.Linear's default gives std ~0.6, 30x the word and position embeddings it is added to, and the decoder
        # would start out reading noise instead of the words.
        for layer in (self.z_prefix, self.z_embed):
            nn.init.normal_(layer.weight, std=config.initializer_range / cfg.latent_dim ** 0.5)
        nn.init.zeros_(self.z_prefix.bias)
        self.likelihood = vaekit.Categorical(pad_id=self.pad_id)
        self.tokenizer = None

    def hidden(self, inputs: Tensor, z: Tensor) -> Tensor:
        """Decoder states [B, T, H] for inputs [B, T] (starting with <bos>) given z [B, D]."""
        z = z if self.use_latent else torch.zeros_like(z)
        emb = self.gpt.wte(inputs) + self.z_embed(z).unsqueeze(1)
        return self.gpt(inputs_embeds=torch.cat([self.z_prefix(z).unsqueeze(1), emb], 1),
                        use_cache=False).last_hidden_state[:, 1:]

    def to_logits(self, hidden: Tensor) -> Tensor:
        """Logits [..., V] from states [..., H]: the output layer is tied to the input embeddings, as in GPT-2."""
        return hidden @ self.gpt.wte.weight.T

    def logits(self, inputs: Tensor, z: Tensor) -> Tensor:
        """Next-token logits [B, T, V] for inputs [B, T] (starting with <bos>) given z [B, D]."""
        return self.to_logits(self.hidden(inputs, z))

    def log_prob(self, x: dict, z: Tensor, c=None) -> Tensor:
        """log p(x|z) per sentence, <eos> included, padding excluded: [B] nats."""
        targets = x["tokens"]
        inputs = decoder_inputs(targets, self.bos_id, self.pad_id, self.unk_id,
                                self.word_dropout if self.training else 0.0)
        vocab = self.gpt.config.vocab_size
        mask, rows = real_tokens(x), chunked_rows(*targets.shape, vocab)
        return torch.cat([sentence_log_prob(self.hidden(inputs[i:i + rows], z[i:i + rows]), self.to_logits,
                                            targets[i:i + rows], mask[i:i + rows], vocab)
                          for i in range(0, targets.shape[0], rows)])

    @torch.no_grad()
    def generate(self, z: Tensor, c=None, max_length: int | None = None, **options) -> dict:
        """Sentences for latents z [B, D] as {"tokens": [B, T], "lengths": [B]}; each step reads one new position,
        the earlier ones come from the key/value cache."""
        z = z if self.use_latent else torch.zeros_like(z)
        z_rows = z.repeat_interleave(beam_rows(options), 0)  # a beam decodes each latent's rows side by side
        z_in = self.z_embed(z_rows).unsqueeze(1)

        def step(inputs, cache):
            emb = self.gpt.wte(inputs).unsqueeze(1) + z_in
            if cache is None:  # the first step also reads the z prefix position
                emb = torch.cat([self.z_prefix(z_rows).unsqueeze(1), emb], 1)
            out = self.gpt(inputs_embeds=emb, use_cache=True, **{_CACHE: cache})
            return self.to_logits(out.last_hidden_state[:, -1]), getattr(out, _CACHE)

        def reorder(cache, rows):
            cache.reorder_cache(rows)  # in place, every layer's keys and values
            return cache

        first = torch.full((z.shape[0],), self.bos_id, dtype=torch.long, device=z.device)
        limit = min(max_length or self.max_length, self.max_length)  # positions beyond were never trained
        return autoregress(step, first, limit, self.eos_id, self.pad_id, self.bos_id, reorder, **options)
