"""Inpainting and super-resolution measured against the baselines a user would otherwise reach for.

PSNR (dB) and SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) on pixels in [0, 1];
baselines: a box filled with the image's mean colour or with its nearest known pixels, and
bicubic upsampling (torchvision's resize). The VAE's own fills are those of `vaekit inpaint` (a latent
fitted to the known pixels); its super-resolution keeps the decoded image consistent with
the low-res input (each round adds back the difference of the average-pooled result to the input).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from vaekit import VAE


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio (dB, peak 1) per image [B] over all pixels, or only where mask [B|1, 1, H, W]."""
    err = (a.float() - b.float()).square()
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.expand_as(err).float()
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    return 10 * torch.log10(1.0 / mse.clamp(min=1e-12))


def _gaussian_window(size: int, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: Tensor, b: Tensor, window: int = 11) -> Tensor:
    """Structural similarity per image [B] of images [B, C, H, W] in [0, 1] (mean over the valid SSIM map)."""
    a, b = a.double(), b.double()
    size = min(window, a.shape[-1], a.shape[-2])
    channels = a.shape[1]
    kernel = _gaussian_window(size).to(a.device)[None, None].expand(channels, 1, size, size)
    blur = lambda t: F.conv2d(t, kernel, groups=channels)  # 'valid', as Wang et al.
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.flatten(1).mean(1).float()


def box_mask(size: int, box: tuple[int, int, int, int], device=None) -> Tensor:
    """bool [1, 1, size, size], True inside the box (x0, y0, x1, y1), x1 and y1 exclusive."""
    x0, y0, x1, y1 = box
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool, device=device)
    mask[..., y0:y1, x0:x1] = True
    return mask


def mean_fill(x: Tensor, mask: Tensor) -> Tensor:
    """Each image with the masked pixels set to the mean colour of its known pixels."""
    known = (~mask).expand_as(x).float()
    mean = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
    return torch.where(mask, mean.expand_as(x), x)


def nearest_fill(x: Tensor, mask: Tensor) -> Tensor:
    """Each masked pixel takes the value of the nearest known pixel (Euclidean; first in raster order on ties)."""
    h, w = x.shape[-2:]
    m = mask.reshape(h, w)  # one mask for the batch
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(-1, 2).float()
    flat_mask = m.reshape(-1).cpu()
    missing, known = coords[flat_mask], coords[~flat_mask]
    source = (~flat_mask).nonzero().squeeze(1)[torch.cdist(missing, known).argmin(1)]
    out = x.flatten(2).clone()
    out[:, :, flat_mask.nonzero().squeeze(1).to(x.device)] = out[:, :, source.to(x.device)]
    return out.reshape_as(x)


def downsample(x: Tensor, factor: int) -> Tensor:
    """The low-res input of super-resolution: average-pooled by factor (as the lowres condition)."""
    return F.avg_pool2d(x, factor)


def bicubic(low: Tensor, size: int) -> Tensor:
    """torchvision's bicubic resize of low-res images to size x size, clamped to [0, 1]."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    return resize(low, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)


def vae_inpaint(model: VAE, x: Tensor, mask: Tensor, c: Tensor | None = None, iterations: int = 50,
                lr: float = 0.05) -> Tensor:
    """Fill the masked pixels [B|1, 1, H, W] with the decoded mean of the latent that best explains the known ones.

    The latent maximises log p(x_known | z) + log p(z) (Adam, `iterations` steps, from the posterior mean of
    the nearest-neighbour fill); known pixels are copied unchanged. Re-encoding a grey box instead (a few
    rounds of encode/decode) lets the encoder read the grey as content: on CIFAR-10 that scored 0.25 dB above
    a mean-colour fill, this fit 1.4 dB.
    """
    mask = mask.reshape(-1, 1, *x.shape[-2:])
    start = nearest_fill(x, mask)
    with torch.no_grad():
        z = model.posterior(start, c).mean.clone()
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    decoder, known = model.decoder, (~mask).expand(x.shape[0], 1, *x.shape[-2:]).float()
    target = decoder.to_target(x)
    with torch.no_grad():  # built once, as constants (a VampPrior runs the encoder on its pseudo-inputs)
        prior = model.prior(c, x.shape[0])
    with torch.enable_grad():
        for _ in range(iterations):
            fit = decoder.likelihood.log_prob(decoder.params(z, c), target, known)
            loss = -(fit + prior.log_prob(z)).sum()
            z.grad, = torch.autograd.grad(loss, z)  # the latent only: the model's weights keep no gradients
            optimizer.step()
    with torch.no_grad():
        return torch.where(mask, model.decode(z.detach(), c), x)


@torch.no_grad()
def vae_superres(model: VAE, low: Tensor, factor: int, c: Tensor | None = None, iterations: int = 10) -> Tensor:
    """Upscale with an unconditional VAE: start from bicubic, decode, and restore the low-res content each round."""
    size = low.shape[-1] * factor
    current = bicubic(low, size)
    for _ in range(iterations):
        current = model.decode(model.posterior(current, c).mean, c)
        # Back-projection: the result average-pools to exactly the input (up to clamping).
        current = (current + F.interpolate(low - downsample(current, factor), scale_factor=factor,
                                           mode="nearest")).clamp(0, 1)
    return current


def summarize(name: str, output: Tensor, target: Tensor, mask: Tensor | None = None,
              crop: tuple[int, int, int, int] | None = None) -> dict[str, float]:
    """{name_psnr, name_ssim}: mean PSNR (over mask) and SSIM (over the crop box x0, y0, x1, y1, else whole)."""
    result = {f"{name}_psnr": psnr(output, target, mask).mean().item()}
    if crop is not None:
        x0, y0, x1, y1 = crop
        output, target = output[..., y0:y1, x0:x1], target[..., y0:y1, x0:x1]
    result[f"{name}_ssim"] = ssim(output, target).mean().item()
    return {k: round(v, 4) if math.isfinite(v) else v for k, v in result.items()}
