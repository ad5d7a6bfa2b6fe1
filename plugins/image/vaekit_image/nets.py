"""Convolutional and residual encoders/decoders for [C, S, S] images, optionally conditioned.

Both take pixels in [0, 1]. The condition is a class label (vaekit.ConditionEmbedding) or a
low-resolution image (LowResEmbedding, a small conv net); its embedding joins the dense layers,
and a low-res image is also upsampled and given to the decoder's last convolution, so fine detail
only has to be added, not copied through the latent.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

import vaekit
from vaekit import ConditionEmbedding, DiagonalGaussian, RecipeError

from .config import ImageModelConfig


class ResidualBlock(nn.Module):
    """x + conv(silu(conv(silu(x)))); the last conv starts at zero so each block starts as the identity."""

    def __init__(self, channels: int, padding_mode: str = "zeros"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class EdgeConvTranspose2d(nn.ConvTranspose2d):
    """A ConvTranspose2d (same weights) that, with edges='replicate', sees the input's edge row and column repeated
    one step further out, so its border outputs get as many input contributions as inner ones (zero padding gives
    them half at kernel 4, stride 2: the frame that shows in reconstructions)."""

    def __init__(self, *args, edges: str = "zeros", **kwargs):
        super().__init__(*args, **kwargs)
        self.edges = edges

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        if self.edges != "replicate":
            return super().forward(x, output_size)
        # One repeated input on each side adds `stride` outputs per side; cropping them as well keeps the size.
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        crop = (self.padding[0] + self.stride[0], self.padding[1] + self.stride[1])
        return F.conv_transpose2d(padded, self.weight, self.bias, self.stride, crop, self.output_padding,
                                  self.groups, self.dilation)


class LowResEmbedding(nn.Module):
    """A small conv net mapping a low-res image [B, C, s, s] in [0, 1] to a vector [B, out_dim]."""

    def __init__(self, channels: int, lowres_size: int, out_dim: int = 64, width: int = 32):
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
            nn.Linear(width * ((lowres_size + 1) // 2) ** 2, out_dim),
        )

    def forward(self, c: Tensor) -> Tensor:
        return self.net(c * 2 - 1)


def condition_embedding(cfg: ImageModelConfig, info: dict) -> nn.Module | None:
    """The embedding for info['condition']: labels, a low-res image, or none."""
    if info["condition"] == "label":
        return ConditionEmbedding(info["num_classes"], cfg.condition_dim)
    if info["condition"] == "lowres":
        return LowResEmbedding(info["channels"], info["lowres_size"], cfg.condition_dim)
    return None


def stage_widths(cfg: ImageModelConfig) -> list[int]:
    """Channels after each stride-2 stage: width, 2 width, 4 width, ... (capped at 8 width)."""
    return [cfg.width * min(2**i, 8) for i in range(cfg.depth)]


class ImageEncoder(nn.Module):
    """q(z|x, c): stride-2 conv (or residual) stages, a dense layer, then mean and log-variance."""

    def __init__(self, cfg: ImageModelConfig, info: dict):
        super().__init__()
        widths, channels = stage_widths(cfg), info["channels"]
        pad = "replicate" if cfg.edges == "replicate" else "zeros"  # Conv2d's padding_mode (ImageModelConfig.edges)
        layers, previous = [], channels
        for width in widths:
            if cfg.architecture == "resnet":
                layers += [nn.Conv2d(previous, width, 3, padding=1, padding_mode=pad)]
                layers += [ResidualBlock(width, pad) for _ in range(cfg.blocks_per_stage)]
                layers += [nn.Conv2d(width, width, 4, stride=2, padding=1, padding_mode=pad), nn.SiLU()]
            else:
                layers += [nn.Conv2d(previous, width, 4, stride=2, padding=1, padding_mode=pad), nn.SiLU()]
            previous = width
        self.spatial = cfg.latent_shape == "spatial"
        if self.spatial:  # AutoencoderKL-shaped: a conv head gives mean and log-variance per latent pixel
            self.features, self.embedding = nn.Sequential(*layers), None
            self.head = nn.Conv2d(widths[-1], 2 * cfg.latent_channels, 3, padding=1, padding_mode=pad)
            return
        self.features = nn.Sequential(*layers, nn.Flatten())
        bottom = info["size"] // 2**cfg.depth
        self.embedding = condition_embedding(cfg, info)
        n_in = widths[-1] * bottom * bottom + (cfg.condition_dim if self.embedding is not None else 0)
        head = [nn.Linear(n_in, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim)] if cfg.hidden \
            else [nn.Linear(n_in, 2 * cfg.latent_dim)]
        self.head = nn.Sequential(*head)

    def forward(self, x: Tensor, c: Tensor | None = None) -> DiagonalGaussian:
        h = self.features(x * 2 - 1)
        if self.spatial:
            mean, logvar = self.head(h).chunk(2, dim=1)
            return DiagonalGaussian(mean, logvar, event_dims=3)
        if self.embedding is not None:
            h = concat(h, self.embedding(c))
        mean, logvar = self.head(h).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)


class ImageDecoder(nn.Module):
    """p(x|z, c): dense layers to a small feature map, stride-2 upsampling stages, then likelihood parameters."""

    def __init__(self, cfg: ImageModelConfig, info: dict):
        super().__init__()
        self.info = dict(info)  # data facts (size, classes, condition) the artifact writers need
        self.channels, self.size = info["channels"], info["size"]
        self.likelihood_name = cfg.likelihood
        if cfg.likelihood == "gaussian":
            self.likelihood = vaekit.get_likelihood("gaussian", scale=cfg.gaussian_scale)
        elif cfg.likelihood == "discretized_logistic":
            self.likelihood = vaekit.get_likelihood("discretized_logistic", bits=8)
        elif cfg.likelihood == "discretized_logistic_rgb":
            from .likelihoods import RGBDiscretizedLogistic

            self.likelihood = RGBDiscretizedLogistic(bits=8)
        else:
            self.likelihood = vaekit.get_likelihood("bernoulli")
        widths = stage_widths(cfg)[::-1]
        self.bottom = info["size"] // 2**cfg.depth
        self.embedding = condition_embedding(cfg, info)
        self.lowres = info["condition"] == "lowres"
        n_in = cfg.latent_dim + (cfg.condition_dim if self.embedding is not None else 0)
        n_out = widths[0] * self.bottom * self.bottom
        dense = [nn.Linear(n_in, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, n_out)] if cfg.hidden \
            else [nn.Linear(n_in, n_out)]
        self.dense = nn.Sequential(*dense, nn.SiLU())
        edges = cfg.edges or "zeros"
        pad = "replicate" if edges == "replicate" else "zeros"  # Conv2d's padding_mode (ImageModelConfig.edges)
        if cfg.latent_shape == "spatial":  # the latent is already a feature map: a conv lifts it to the top width
            self.dense = nn.Sequential(nn.Conv2d(cfg.latent_channels, widths[0], 3, padding=1, padding_mode=pad),
                                       nn.SiLU())
        n_params = self.channels * self.likelihood.params_per_channel
        # decoder_output=upsample: the last transposed convolution gives the parameters (no output convolution)
        direct = cfg.decoder_output == "upsample"
        if direct and self.lowres:
            raise RecipeError("model.decoder_output: upsample has no output convolution to read the "
                                     "low-res condition; use conv")
        if cfg.decoder_pose and self.lowres:
            raise RecipeError("model.decoder_pose: a super-resolution decoder keeps the low-res image in place; "
                              "use decoder_pose: false with data.condition: lowres")
        layers = []
        for i, width in enumerate(widths):
            out = widths[i + 1] if i + 1 < len(widths) else n_params if direct else cfg.width
            if cfg.architecture == "resnet":
                layers += [ResidualBlock(width, pad) for _ in range(cfg.blocks_per_stage)]
                layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                           nn.Conv2d(width, out, 3, padding=1, padding_mode=pad), nn.SiLU()]
            else:
                layers += [EdgeConvTranspose2d(width, out, 4, stride=2, padding=1, edges=edges), nn.SiLU()]
        self.upsample = nn.Sequential(*(layers[:-1] if direct else layers))  # parameters take no activation
        lowres_width = 0
        self.lowres_at = cfg.lowres_at
        if self.lowres:  # super-resolution: a few layers read the low-res image
            self.lowres_net = lowres_reader(cfg, self.channels, info["lowres_factor"])
            lowres_width = cfg.width if cfg.lowres_layers else self.channels
        self.out = nn.Identity() if direct else nn.Conv2d(cfg.width + lowres_width, n_params, 3, padding=1,
                                                          padding_mode=pad)
        self.top_channels = widths[0]
        self.pose = None
        if cfg.decoder_pose:  # starts at the identity: a small net whose last layer is zero, biased to (1, 0, 0, 0)
            self.pose = nn.Sequential(nn.Linear(n_in, 64), nn.SiLU(), nn.Linear(64, 4))
            nn.init.zeros_(self.pose[2].weight)
            with torch.no_grad():
                self.pose[2].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))

    def params(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """Likelihood parameters [B, C * params_per_channel, S, S] for latents z [B, D] (or [B, C', S/f, S/f])."""
        code = z if self.embedding is None else concat(z, self.embedding(c))
        h = self.dense(code)
        if z.dim() == 2:
            h = h.reshape(z.shape[0], self.top_channels, self.bottom, self.bottom)
        # Channels-last activations: oneDNN's (transposed) convolutions run 1.6x faster so on a CPU (same math).
        h = self.upsample(h.contiguous(memory_format=torch.channels_last))
        if self.lowres:  # the low-res image itself, at full size, beside the learned features
            lowres = c * 2 - 1
            if self.lowres_at == "full":
                lowres = F.interpolate(lowres, size=(self.size, self.size), mode="nearest")
            lowres = self.lowres_net(lowres.contiguous(memory_format=torch.channels_last))  # convs: as above
            lowres = lowres[..., :self.size, :self.size]  # sub-pixel output of a size the factor does not divide
            h = concat(h, lowres.contiguous(memory_format=torch.channels_last), dim=1)
        params = self.out(h)
        if self.pose is not None:
            params = self.place(params, self.pose(code))
        if self.lowres and self.likelihood_name != "bernoulli":
            # A location likelihood predicts detail on top of the bicubic upsampling, so super-resolution
            # starts at the baseline a user would otherwise use instead of having to learn it first.
            base = F.interpolate(c, size=(self.size, self.size), mode="bicubic", align_corners=False,
                                 antialias=True).clamp(0, 1)  # what torchvision's resize does: the baseline
            base = self.to_target(base).expand(params.shape[0], -1, -1, -1)
            params = torch.cat([params[:, :self.channels] + base, params[:, self.channels:]], dim=1)
        return params

    @staticmethod
    def place(drawing: Tensor, pose: Tensor) -> Tensor:
        """Move the drawn parameters [B, P, S, S] by the similarity transform pose [B, 4] = (a, b, shift x, shift y).

        Output pixel p reads the drawing at [[a, -b], [b, a]] p + shift (coordinates in [-1, 1]); beyond the drawing's
        edge it reads the edge, so background stays background.
        """
        a, b, tx, ty = pose.unbind(-1)
        theta = torch.stack([torch.stack([a, -b, tx], -1), torch.stack([b, a, ty], -1)], -2)
        grid = F.affine_grid(theta, list(drawing.shape), align_corners=False)
        return F.grid_sample(drawing, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def to_target(self, x: Tensor) -> Tensor:
        """Pixels in [0, 1] to the likelihood's data scale ([-1, 1] for the discretized logistic)."""
        return x * 2 - 1 if self.likelihood_name.startswith("discretized_logistic") else x

    def to_pixels(self, values: Tensor) -> Tensor:
        """The likelihood's data scale back to pixels in [0, 1]."""
        if self.likelihood_name.startswith("discretized_logistic"):
            values = (values + 1) / 2
        return values.clamp(0, 1)

    def log_prob(self, x: Tensor, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(x|z, c) per example [B], nats (x is any batch size matching z: IW-NLL tiles it)."""
        return self.likelihood.log_prob(self.params(z, c), self.to_target(x))

    def differentiable_mean(self, x: Tensor, z: Tensor, c: Tensor | None = None) -> Tensor:
        """Mean images in [0, 1] [B, C, S, S], with gradients (the engine's latent.condition_cycle)."""
        return self.generate(z, c)

    def generate(self, z: Tensor, c: Tensor | None = None, mode: str = "mean") -> Tensor:
        """Images in [0, 1] [B, C, S, S]: the likelihood's mean (mode='mean') or a draw from it ('sample')."""
        params = self.params(z, c)
        values = self.likelihood.sample(params) if mode == "sample" else self.likelihood.mean(params)
        return self.to_pixels(values)


def lowres_reader(cfg, channels: int, factor: int) -> nn.Sequential:
    """The layers that read a low-res image [B, channels, S/factor, S/factor] into cfg.width full-size features.

    full: cfg.lowres_layers 3x3 convs on the image blown up to full size (SRCNN, Dong et al. 2014).
    low: the convs run at the low-res size (lowres_width channels), then a sub-pixel convolution makes
    cfg.width full-size channels (ESPCN, Shi et al. 2016): each layer costs factor^2 less and sees factor^2 more.
    """
    full = cfg.lowres_at == "full"
    width = cfg.width if full else cfg.lowres_width or cfg.width
    reads = []
    for i in range(cfg.lowres_layers):
        reads += [nn.Conv2d(channels if i == 0 else width, width, 3, padding=1), nn.SiLU()]
    if not full:
        reads += [nn.Conv2d(width, cfg.width * factor**2, 3, padding=1), nn.PixelShuffle(factor), nn.SiLU()]
    return nn.Sequential(*reads)


def concat(a: Tensor, b: Tensor, dim: int = -1) -> Tensor:
    """Concatenate features, broadcasting b's batch to a's when b has batch 1 (one condition for all)."""
    if b.shape[0] == 1 and a.shape[0] > 1:
        b = b.expand(a.shape[0], *b.shape[1:])
    return torch.cat([a, b], dim=dim)
