"""The image plugin's encoder and Bernoulli decoder as pythae networks (imported inside a pythae venv only)."""

from __future__ import annotations

import torch
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder


class Encoder(BaseEncoder):
    """q(z|x) as pythae wants it: the posterior's mean and log-variance."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        q = self.encoder(x)
        return ModelOutput(embedding=q.mean, log_covariance=q.logvar)


class Decoder(BaseDecoder):
    """p(x|z) as pythae wants it: Bernoulli means (its BCE reconstruction loss takes probabilities)."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.decoder.params(z)))
