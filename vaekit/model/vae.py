"""VAE(nn.Module): encoder -> q(z|x, c), decoder -> log p(x|z, c), prior p(z) or p(z|c).

The engine needs nothing modality-specific; a plugin supplies the two networks:

    encoder(x, c=None) -> DiagonalGaussian                 # q(z|x, c)
    decoder.log_prob(x, z, c=None) -> Tensor[B]            # log p(x|z, c), nats per example
    decoder.generate(z, c=None, **options) -> x            # a data point per latent
    decoder.differentiable_mean(x, z, c) -> x'             # optional: E[x|z, c] shaped like x, with gradients
                                                           # (latent.condition_cycle needs it)

    model = VAE(encoder, decoder, latent_dim=32)                              # p(z) = N(0, I)
    model = VAE(encoder, decoder, 32, prior=LearnedConditionalPrior(32, ConditionEmbedding(10, 64)))
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..core.distributions import DiagonalGaussian, sequence_mask
from ..io.checkpoint import save_pretrained
from ..objectives.elbo import ELBO, Objective, ObjectiveTerms


class ConditionEmbedding(nn.Module):
    """Map a condition to a feature vector [B, out_dim].

    Class labels: num_classes is an int (labels [B]) or a list (labels [B, len(list)], one
    embedding table per column, summed: e.g. digit and speaker). Real-valued conditions [B, F]:
    give condition_dim = F instead.
    """

    def __init__(self, num_classes: int | list[int] | None = None, out_dim: int = 64,
                 condition_dim: int | None = None):
        super().__init__()
        if (num_classes is None) == (condition_dim is None):
            raise ValueError("give exactly one of num_classes (labels) or condition_dim (real-valued)")
        self.num_classes = [num_classes] if isinstance(num_classes, int) else num_classes
        self.out_dim = out_dim
        if self.num_classes is not None:
            self.tables = nn.ModuleList(nn.Embedding(n, out_dim) for n in self.num_classes)
        else:
            self.linear = nn.Linear(condition_dim, out_dim)

    def forward(self, c: Tensor) -> Tensor:
        if self.num_classes is None:
            return self.linear(c.float())
        labels = c.long().reshape(c.shape[0], -1)
        if labels.shape[1] != len(self.tables):
            raise ValueError(f"expected {len(self.tables)} label column(s), got {labels.shape[1]}")
        return sum(table(labels[:, i]) for i, table in enumerate(self.tables))


def latent_layout(batch_size: int, default: tuple, like=None, shape: tuple | None = None,
                  mask: Tensor | None = None) -> tuple[tuple[int, ...], Tensor | None]:
    """(batch + event shape, mask) of a prior: like a posterior's, else [batch_size, *shape or default]."""
    if like is not None:
        return tuple(like.mean.shape), like.mask
    event = tuple(shape if shape is not None else default)
    if any(size is None for size in event):
        raise ValueError(f"the latent's shape {event} has a free length: give a length or a shape")
    return (batch_size, *event), mask


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I), whatever the condition, in the latent's shape (or a posterior's, with like=)."""

    def __init__(self, latent_dim: int, latent_shape: tuple | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        self.latent_shape = tuple(latent_shape) if latent_shape is not None else (latent_dim,)
        self.register_buffer("_device_anchor", torch.zeros(()), persistent=False)

    def forward(self, c: Tensor | None, batch_size: int, like=None, shape: tuple | None = None,
                mask: Tensor | None = None) -> DiagonalGaussian:
        full, mask = latent_layout(batch_size, self.latent_shape, like, shape, mask)
        return DiagonalGaussian.standard(full, device=self._device_anchor.device,
                                         event_dims=len(full) - 1, mask=mask)


class LearnedConditionalPrior(nn.Module):
    """p(z|c) = N(mu(c), diag sigma^2(c)) with a small MLP on the condition's embedding."""

    def __init__(self, latent_dim: int, embedding: ConditionEmbedding, hidden: int = 128):
        super().__init__()
        self.latent_dim = latent_dim
        self.embedding = embedding
        self.net = nn.Sequential(nn.Linear(embedding.out_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * latent_dim))
        nn.init.zeros_(self.net[-1].weight)  # start at N(0, I): training then moves it only where useful
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, c: Tensor | None, batch_size: int, like=None, shape: tuple | None = None,
                mask: Tensor | None = None) -> DiagonalGaussian:
        if c is None:
            raise ValueError("this model has a learned conditional prior: give a condition c")
        mean, logvar = self.net(self.embedding(c)).chunk(2, dim=-1)
        if like is None and shape is None:
            return DiagonalGaussian(mean, logvar)
        # a shaped latent ([T, D], say): the same N(mu(c), sigma^2(c)) at every position of its last axis
        full, mask = latent_layout(batch_size, (self.latent_dim,), like, shape, mask)
        view = (mean.shape[0], *([1] * (len(full) - 2)), mean.shape[-1])
        return DiagonalGaussian(mean.reshape(view).expand(full), logvar.reshape(view).expand(full),
                                event_dims=len(full) - 1, mask=mask)


class VAE(nn.Module):
    """A variational autoencoder assembled from a plugin's encoder and decoder.

    What a plugin's verbs may read and call on the model they are given:

    - `encoder`, `decoder`: the two networks. The recipe's latent section may replace `encoder` (latent.posterior:
      iaf wraps the plugin's encoder, kept as `encoder.base`) and `prior_net` (latent.prior: mog, vamp), so keep
      what the verbs need on the decoder or in `config["info"]`, not on the encoder's class.
    - `latent_dim` (units per latent step), `latent_shape` (the event shape: (latent_dim,) by default), `device`,
      `conditional_prior` (True when p(z|c) depends on the condition).
    - `config`: set by vaekit when it builds or loads the model: "plugin" (its name), "model" (the model section
      as a dict), "info" (the DataBundle.info build_data gave when the run trained, read back from config.json),
      "assets_dir" (the assets folder), and "latent" when the latent section is not the default.
    - `posterior(x, c)` or `encode(x, c)`: q(z|x, c), whose `mode()` is the posterior mean; `decode(z, c,
      **options)`: the decoder's generate; `sample(n, c, temperature)` and `reconstruct(x, c)` (both without
      gradients); `sample_latents(n, c, temperature)`: prior draws, at temperature 0 the prior's mean
      (`model.sample_latents(1, c, temperature=0.0)[0]`, the usual base point of a traversal without an input);
      `prior(c, batch_size)`; `log_likelihood(x, z, c)`.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, prior: nn.Module | None = None,
                 latent_shape: tuple | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        # the latent's event shape: (D,) by default, (None, D) for a sequence of any length, (C, H, W)
        self.latent_shape = tuple(latent_shape) if latent_shape is not None else (latent_dim,)
        self.prior_net = prior if prior is not None else StandardNormalPrior(latent_dim, self.latent_shape)
        self.register_buffer("_device_anchor", torch.zeros(()), persistent=False)
        self.config: dict = {}  # plugin name, model config, data info: set by vaekit.build_model

    @property
    def device(self) -> torch.device:
        return self._device_anchor.device

    @property
    def conditional_prior(self) -> bool:
        return not isinstance(self.prior_net, StandardNormalPrior)

    def posterior(self, x, c: Tensor | None = None) -> DiagonalGaussian:
        """q(z|x, c)."""
        return self.encoder(x, c)

    def prior(self, c: Tensor | None = None, batch_size: int = 1, like=None, shape: tuple | None = None,
              mask: Tensor | None = None):
        """p(z) or p(z|c), batched: [B, *latent_shape], or the shape (and mask) of a posterior given as like."""
        return self.prior_net(c, batch_size, like=like, shape=shape, mask=mask)

    def sample_latents(self, n: int, c: Tensor | None = None, temperature: float = 1.0,
                       length: int | Tensor | None = None, shape: tuple | None = None) -> Tensor:
        """n prior draws [n, *event], their spread scaled by temperature (0: the prior's mean, or each draw a
        mixture component's mean); length fills a sequence latent's free axis (an int, or lengths [n])."""
        if length is not None:
            lengths = torch.as_tensor(length, device=self.device).expand(n) if not torch.is_tensor(length) \
                or length.dim() == 0 else length.to(self.device)
            event = tuple(shape if shape is not None else self.latent_shape)
            free = [i for i, size in enumerate(event) if size is None]
            if len(free) != 1:
                raise ValueError(f"length= needs a latent with one free axis; this one is {event}")
            event = tuple(int(lengths.max()) if size is None else size for size in event)
            mask = sequence_mask(lengths, event[free[0]]) if free[0] == 0 else None
            return self.prior(c, n, shape=event, mask=mask).sample(temperature=temperature)
        return self.prior(c, n, shape=shape).sample(temperature=temperature)

    def log_likelihood(self, x, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(x|z, c) per example: [B] nats."""
        return self.decoder.log_prob(x, z, c)

    def forward(self, x, c: Tensor | None = None, objective: Objective | None = None, step: int = 0
                ) -> ObjectiveTerms:
        """The training objective's terms on one batch (the ELBO unless another objective is given)."""
        return (objective or ELBO())(self, x, c, step)

    def encode(self, x, c: Tensor | None = None) -> DiagonalGaussian:
        """q(z|x, c) (alias of posterior, as in diffusers' encode(x).latent_dist)."""
        return self.posterior(x, c)

    def decode(self, z: Tensor, c: Tensor | None = None, **options):
        """Decode latents to data with the decoder's generate (mean image, greedy text, ...)."""
        return self.decoder.generate(z, c, **options)

    @torch.no_grad()
    def sample(self, n: int, c: Tensor | None = None, temperature: float = 1.0, length: int | Tensor | None = None,
               shape: tuple | None = None, **options):
        """n draws from the prior (scaled by temperature; of a given length or shape) decoded to data."""
        if c is not None and c.dim() > 0 and c.shape[0] == 1 and n > 1:
            c = c.expand(n, *c.shape[1:])
        z = self.sample_latents(n, c, temperature, length=length, shape=shape)
        return self.decode(z, c, **options)

    @torch.no_grad()
    def reconstruct(self, x, c: Tensor | None = None, sample_latent: bool = False, **options):
        """Encode then decode; decodes the posterior mean unless sample_latent."""
        q = self.posterior(x, c)
        z = q.sample() if sample_latent else q.mode()
        return self.decode(z, c, **options)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write model.safetensors + config.json (+ assets) to directory; reload with vaekit.load."""
        return save_pretrained(self, directory)
