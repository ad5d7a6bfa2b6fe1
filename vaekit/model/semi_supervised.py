"""M2Model: the semi-supervised VAE of Kingma et al. 2014 around a plugin's networks, or over code vectors (M1+M2).

    q(y|x)     classifier: an MLP on the trunk's features
    q(z|x, y)  an MLP on [features, one-hot y] -> a diagonal Gaussian over z (latent_dim)
    p(x|z, y)  an MLP on [z, one-hot y] -> the input of the decoder below it

The trunk reads x once per batch: a plugin's encoder (its posterior mean and log-variance are the features) or,
for M1+M2, nothing at all (x is already a code vector). The decoder below is the plugin's, fed the MLP's output as
its latent, or a diagonal Gaussian over code vectors. For M1+M2 the trained VAE whose codes M2 reads travels
inside the model as `codes_model` (frozen), so `classify` takes the plugin's own inputs; a codes model whose latent
is a sequence gives its means pooled over time into `segments` stretches (vaekit.core.pooling).

As a VAE, posterior(x, c) and log_likelihood(x, z, c) take the class c [B], so `vaekit eval` measures the ELBO
with the label observed; class_logits and classify give q(y|x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.distributions import LOG_2PI, DiagonalGaussian
from ..core.pooling import pooled_code
from .vae import VAE


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Two hidden layers of `hidden` units (SiLU), then a linear output."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, n_out))


class EncoderFeatures(nn.Module):
    """A plugin encoder as the trunk: features = [mean, log-variance] of its q(z|x), [B, 2 D]."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, x) -> Tensor:
        q = self.encoder(x, None)
        if q.mean.dim() != 2:
            raise ValueError(f"M2 needs a vector latent from the plugin's encoder, got shape {tuple(q.mean.shape[1:])}")
        return torch.cat([q.mean, q.logvar], dim=-1)


class CodeFeatures(nn.Module):
    """Code vectors as the trunk: the features are the codes themselves."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class GaussianCodeDecoder(nn.Module):
    """p(code | h): a diagonal Gaussian over code vectors [B, code_dim] from hidden features h."""

    def __init__(self, n_in: int, code_dim: int):
        super().__init__()
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(n_in, 2 * code_dim))

    def log_prob(self, x: Tensor, h: Tensor, c: Tensor | None = None) -> Tensor:
        mean, logvar = self.head(h).chunk(2, dim=-1)
        logvar = logvar.clamp(-10.0, 10.0)
        return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar)).sum(-1)

    def generate(self, h: Tensor, c: Tensor | None = None, **options) -> Tensor:
        return self.head(h).chunk(2, dim=-1)[0]


class M2Encoder(nn.Module):
    """q(z|x, y) = N(MLP([features(x), one-hot y])): the trunk, then the head."""

    def __init__(self, trunk: nn.Module, feature_dim: int, num_classes: int, latent_dim: int, hidden: int):
        super().__init__()
        self.trunk, self.num_classes = trunk, num_classes
        self.head = mlp(feature_dim + num_classes, hidden, 2 * latent_dim)

    def from_features(self, features: Tensor, y: Tensor) -> DiagonalGaussian:
        onehot = F.one_hot(y.long().reshape(-1), self.num_classes).to(features.dtype)
        mean, logvar = self.head(torch.cat([features, onehot], dim=-1)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def forward(self, x, c: Tensor | None = None) -> DiagonalGaussian:
        if c is None:
            raise ValueError("M2's q(z|x, y) needs the class y: give c")
        return self.from_features(self.trunk(x), c)


class M2Decoder(nn.Module):
    """p(x|z, y): an MLP on [z, one-hot y] gives the input of the decoder below (a plugin's, or a code Gaussian)."""

    def __init__(self, below: nn.Module, num_classes: int, latent_dim: int, hidden: int, below_dim: int):
        super().__init__()
        self.below, self.num_classes = below, num_classes
        self.lift = mlp(latent_dim + num_classes, hidden, below_dim)

    def _below_input(self, z: Tensor, c: Tensor | None) -> Tensor:
        if c is None:
            raise ValueError("M2's p(x|z, y) needs the class y: give c")
        onehot = F.one_hot(c.long().reshape(-1), self.num_classes).to(z.dtype)
        return self.lift(torch.cat([z, onehot], dim=-1))

    def log_prob(self, x, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.below.log_prob(x, self._below_input(z, c), None)

    def generate(self, z: Tensor, c: Tensor | None = None, **options):
        return self.below.generate(self._below_input(z, c), None, **options)


class M2Model(VAE):
    """The M2 model: a classifier q(y|x), q(z|x, y) and p(x|z, y) around a trunk and a decoder (module docstring)."""

    def __init__(self, trunk: nn.Module, feature_dim: int, below: nn.Module, below_dim: int, num_classes: int,
                 latent_dim: int = 50, hidden: int = 500, codes_model: VAE | None = None, segments: int = 1):
        encoder = M2Encoder(trunk, feature_dim, num_classes, latent_dim, hidden)
        super().__init__(encoder, M2Decoder(below, num_classes, latent_dim, hidden, below_dim), latent_dim)
        self.num_classes = num_classes
        self.classifier = mlp(feature_dim, hidden, num_classes)
        self.codes_model, self.segments = codes_model, segments
        if codes_model is not None:
            codes_model.requires_grad_(False)  # M1 stays as it was trained; its weights travel in the checkpoint

    def train(self, mode: bool = True):
        super().train(mode)
        if self.codes_model is not None:
            self.codes_model.eval()
        return self

    def features(self, x) -> Tensor:
        """The trunk's features of a batch [B, F], read once and shared by q(y|x) and q(z|x, y)."""
        return self.encoder.trunk(x)

    def class_logits(self, features: Tensor) -> Tensor:
        """Logits of q(y|x) [B, K] from the trunk's features."""
        return self.classifier(features)

    def posterior_from(self, features: Tensor, y: Tensor) -> DiagonalGaussian:
        """q(z|x, y) from the trunk's features."""
        return self.encoder.from_features(features, y)

    def plugin_model(self) -> VAE:
        """The plugin's own networks as a VAE (M1+M2: the codes model), for the plugin's load_inputs and verbs."""
        if self.codes_model is not None:
            return self.codes_model
        view = VAE(self.encoder.trunk.encoder, self.decoder.below, self.decoder.lift[-1].out_features)
        view.config = self.config
        return view

    @torch.no_grad()
    def codes(self, x) -> Tensor:
        """What M2 reads from the plugin's inputs: x itself, or (M1+M2) the codes model's posterior mean (a
        sequence's pooled over time)."""
        return x if self.codes_model is None else pooled_code(self.codes_model.posterior(x), segments=self.segments)

    @torch.no_grad()
    def classify(self, x) -> Tensor:
        """q(y|x) [B, K] for the plugin's inputs (through the codes model for M1+M2)."""
        return F.softmax(self.class_logits(self.features(self.codes(x))), dim=-1)


def m2_model(num_classes: int, latent_dim: int, hidden: int, base: VAE | None = None, code_dim: int | None = None,
             codes_model: VAE | None = None, segments: int = 1) -> M2Model:
    """M2 around a plugin's VAE (its encoder as trunk, its decoder below), or over code vectors of code_dim (read
    from codes_model's posterior, a sequence pooled into `segments` stretches of time)."""
    if base is not None:
        width = base.latent_dim if tuple(base.latent_shape) == (base.latent_dim,) else None
        if width is None:
            raise ValueError(f"M2 needs the plugin's vector latent; this model's latent has shape {base.latent_shape}")
        return M2Model(EncoderFeatures(base.encoder), 2 * width, base.decoder, width, num_classes, latent_dim, hidden)
    return M2Model(CodeFeatures(), code_dim, GaussianCodeDecoder(hidden, code_dim), hidden, num_classes, latent_dim,
                   hidden, codes_model=codes_model, segments=segments)
