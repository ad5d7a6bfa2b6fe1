"""A small autoregressive prior over a spatial latent's pixels (PixelCNN-style, van den Oord et al. 2016),
fitted after training to the codes the encoder gives the training set.

A spatial latent [C, H, W] sampled from N(0, I) decodes to textures: the aggregate posterior fills a thin
part of that space, with strong dependence between neighbouring latent pixels. This prior learns
p(z) = prod_ij p(z_ij | z_<ij) in raster order, each latent pixel's C values a mixture of K diagonal
Gaussians whose parameters a causal (masked) convolution stack reads from the pixels above and to the left.

The first masked convolution spans the whole latent grid (kernel 2 * max(H, W) - 1, capped at 15), so each
pixel sees every pixel before it (no blind spot for grids up to 8 x 8); residual 3 x 3 masked convolutions
follow. Codes are standardized per channel with the training codes' statistics, kept as buffers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only pixels before the centre in raster order (kind 'A'), or also the centre ('B')."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, kind: str):
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        mask = torch.ones(kernel, kernel)
        centre = kernel // 2
        mask[centre, centre + (kind == "B"):] = 0
        mask[centre + 1:] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class LatentPixelCNN(nn.Module):
    """p(z) over latents [B, C, H, W]: per latent pixel, in raster order, a mixture of diagonal Gaussians."""

    def __init__(self, latent_shape: tuple[int, int, int], hidden: int = 48, blocks: int = 4, components: int = 10):
        super().__init__()
        channels, height, width = (int(s) for s in latent_shape)
        self.latent_shape, self.components = (channels, height, width), int(components)
        self.settings = {"hidden": int(hidden), "blocks": int(blocks), "components": int(components)}
        kernel = min(2 * max(height, width) - 1, 15)
        self.first = MaskedConv2d(channels, hidden, kernel, "A")
        self.blocks = nn.ModuleList(nn.Sequential(nn.ReLU(), MaskedConv2d(hidden, hidden, 3, "B"), nn.ReLU(),
                                                  nn.Conv2d(hidden, hidden, 1)) for _ in range(blocks))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, components * (1 + 2 * channels), 1))
        self.register_buffer("shift", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))

    def _params(self, u: Tensor, row: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture logits [B, K, H, W], means and log-scales [B, K, C, H, W] of standardized codes u (of one row
        only, H = 1, when row is given)."""
        h = self.first(u)
        for block in self.blocks:
            h = h + block(h)
        out = self.out(h if row is None else h[:, :, row:row + 1])
        b, k, c = u.shape[0], self.components, self.latent_shape[0]
        logits = out[:, :k]
        means, log_scales = out[:, k:].reshape(b, k, 2 * c, *out.shape[2:]).split(c, dim=2)
        return logits, means, log_scales.clamp(-7.0, 5.0)

    def _standardize(self, z: Tensor) -> Tensor:
        return (z - self.shift.reshape(-1, 1, 1)) / self.scale.reshape(-1, 1, 1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (nats): z [B, C, H, W] -> [B]."""
        u = self._standardize(z)
        logits, means, log_scales = self._params(u)
        per_unit = -0.5 * ((u.unsqueeze(1) - means) * torch.exp(-log_scales)).square() - log_scales \
            - 0.5 * math.log(2 * math.pi)
        per_pixel = torch.logsumexp(logits.log_softmax(1) + per_unit.sum(2), dim=1)  # [B, H, W]
        return per_pixel.sum((1, 2)) - self.scale.log().sum() * self.latent_shape[1] * self.latent_shape[2]

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """n draws [n, C, H, W], one latent pixel at a time; temperature scales each component's spread."""
        channels, height, width = self.latent_shape
        device = self.shift.device
        u = torch.zeros(n, channels, height, width, device=device)
        for i in range(height):
            for j in range(width):
                # the masks make row i's outputs depend on rows <= i only: the rows below are not computed
                logits, means, log_scales = self._params(u[:, :, :i + 1], row=i)
                probs = logits[:, :, 0, j].softmax(1)
                k = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                picked = torch.arange(n, device=device)
                mean, log_scale = means[picked, k, :, 0, j], log_scales[picked, k, :, 0, j]
                eps = torch.randn(mean.shape, device=device, generator=generator)
                u[:, :, i, j] = mean + temperature * log_scale.exp() * eps
        return u * self.scale.reshape(-1, 1, 1) + self.shift.reshape(-1, 1, 1)


def fit_latent_pixelcnn(means: Tensor, stds: Tensor, latent_shape: tuple[int, int, int], components: int = 10,
                        steps: int = 3000, batch_size: int = 64, lr: float = 1e-3, hidden: int = 48, blocks: int = 4,
                        seed: int = 0) -> tuple[LatentPixelCNN, float]:
    """Fit by maximum likelihood on draws z = mean + std * eps of the training posteriors (means, stds [N, *shape]):
    (the prior, mean log-likelihood in nats of the posterior means under it)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    prior = LatentPixelCNN(latent_shape, hidden, blocks, components)
    means, stds = means.float().reshape(-1, *latent_shape), stds.float().reshape(-1, *latent_shape)
    prior.shift.copy_(means.mean((0, 2, 3)))
    prior.scale.copy_((means.var((0, 2, 3)) + stds.square().mean((0, 2, 3))).sqrt().clamp(min=1e-4))
    optimizer = torch.optim.Adam(prior.parameters(), lr=lr)
    warmup = max(1, steps // 20)  # then a cosine decay to 0 at the last step
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min((step + 1) / warmup, 0.5 * (
        1 + math.cos(math.pi * min(step / max(steps, 1), 1.0)))))
    prior.train()
    for _ in range(steps):
        idx = torch.randint(means.shape[0], (min(batch_size, means.shape[0]),), generator=generator)
        z = means[idx] + stds[idx] * torch.randn(stds[idx].shape, generator=generator)
        loss = -prior.log_prob(z).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(prior.parameters(), 10.0)
        optimizer.step()
        schedule.step()
    prior.eval()
    with torch.no_grad():
        log_lik = torch.cat([prior.log_prob(chunk) for chunk in means.split(1024)]).mean().item()
    return prior, log_lik
