"""An RGB likelihood: the engine's discretized logistic with each channel's mean shifted by the earlier channels.

Given z, a VAE decoder's blurry mean leaves errors that are strongly correlated across red, green and
blue (mostly brightness). As in PixelCNN++ (Salimans et al. 2017), green's mean moves with the actual
red value and blue's with red and green, by coefficients the decoder predicts per pixel, so those
shared errors are paid for once instead of three times. Still a true code length (8-bit masses).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaekit.plugin_api import DiscretizedLogistic, Likelihood


class RGBDiscretizedLogistic(Likelihood):
    """Discretized logistic over 3 channels in [-1, 1]: params [B, 9, H, W] = means, log-scales, coefficients."""

    params_per_channel = 3

    def __init__(self, bits: int = 8):
        super().__init__()
        self.marginal = DiscretizedLogistic(bits)

    @staticmethod
    def _coupled(means: Tensor, coeffs: Tensor, x: Tensor) -> Tensor:
        """Means of (R, G, B) given the actual (or drawn) earlier channels x."""
        a = torch.tanh(coeffs)
        r = means[:, 0:1]
        g = means[:, 1:2] + a[:, 0:1] * x[:, 0:1]
        b = means[:, 2:3] + a[:, 1:2] * x[:, 0:1] + a[:, 2:3] * x[:, 1:2]
        return torch.cat([r, g, b], dim=1)

    def log_prob(self, params, x, mask=None):
        means, log_scales, coeffs = self.split(params)
        return self.marginal.log_prob(torch.cat([self._coupled(means, coeffs, x), log_scales], dim=1), x, mask)

    def _decode(self, params, draw) -> Tensor:
        """Channels in order, each from its coupled distribution: draw(mean, log_scale) -> values."""
        means, log_scales, coeffs = self.split(params)
        x = torch.zeros_like(means)
        for channel in range(3):
            mean = self._coupled(means, coeffs, x)[:, channel:channel + 1]
            x[:, channel:channel + 1] = draw(torch.cat([mean, log_scales[:, channel:channel + 1]], dim=1))
        return x

    def mean(self, params):
        return self._decode(params, self.marginal.mean)

    def sample(self, params):
        return self._decode(params, self.marginal.sample)
