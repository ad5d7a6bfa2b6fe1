"""The recipe's `data:` and `model:` sections for images (typed and checked by vaekit.config.recipe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ImageDataConfig:
    """Which images, at what size, conditioned on what.

    Pixels reach the model as floats in [0, 1] of shape [channels, size, size]; the likelihood's
    own scaling (e.g. [-1, 1] for the discretized logistic) happens inside the decoder.
    """

    name: Literal["shapes", "mnist", "folder"] = "shapes"
    root: str | None = field(default=None, metadata={"must_exist": True})  # mnist IDX folder or image folder
    # Unset: 32 for shapes, 28 for mnist; a folder's common (median) shorter side, capped at 64 and rounded down
    # to a multiple of 4 (8 from 32 up), so the network can halve it. The run's recipe.yaml records the choice.
    size: int | None = None  # pixels per side
    channels: int | None = None  # 1 or 3; unset: 1 for shapes and mnist, for a folder 1 when every image is grayscale
    # auto = dynamic for mnist (Bernoulli needs binary data), none for folder; shapes are binary already.
    binarize: Literal["auto", "dynamic", "static", "none"] = "auto"
    dequantize: bool = False  # add U(0, 1) noise to 8-bit levels (for the gaussian likelihood's bits/dim)
    condition: Literal["none", "label", "lowres"] = "none"  # CVAE on class labels, or super-resolution
    lowres_factor: int = 4  # the lowres condition is the image average-pooled by this factor
    val_size: int = 10000  # mnist: validation images taken from the end of the 60k training set
    val_fraction: float = 0.1  # folder: share of images for validation (and again for test)
    num_train: int = 20000  # shapes: examples per split (generated from seed + index, no files)
    num_val: int = 1000
    num_test: int = 1000
    skip_bad_files: bool = False  # folder: skip unreadable images with a warning instead of failing
    download: bool = False  # mnist: let torchvision download the IDX files into root when missing (online)

    def __post_init__(self):
        if self.size is not None and self.size < 8:
            raise ValueError(f"size: expected at least 8 pixels, got {self.size}")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels: expected 1 or 3, got {self.channels}")
        if self.lowres_factor < 2:
            raise ValueError(f"lowres_factor: expected 2 or more, got {self.lowres_factor}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction: expected a number in [0, 0.5), got {self.val_fraction}")
        if self.name in ("mnist", "folder") and self.root is None:
            raise ValueError(f"root: the {self.name} data set needs a folder, e.g. root: ${{VAEKIT_DATA}}/mnist")


@dataclass
class ImageModelConfig:
    """Encoder/decoder shape and likelihood; width = channels of the first stage, doubled per stage."""

    architecture: Literal["conv", "resnet"] = "conv"
    latent_dim: int = 32
    width: int = 32
    # Stride-2 stages: size must be divisible by 2**depth (28 -> 7 with depth 2). Unset: the most halvings
    # (up to 4) that leave a feature map of at least 4 pixels, recorded in the run's recipe.yaml.
    depth: int | None = None
    hidden: int = 512  # dense layer between the conv stack and the latent (0 = none)
    blocks_per_stage: int = 1  # resnet: residual blocks per stage
    # discretized_logistic_rgb: 3 channels only; green and blue means follow the actual red (and green) values
    likelihood: Literal["bernoulli", "gaussian", "discretized_logistic", "discretized_logistic_rgb"] = "bernoulli"
    gaussian_scale: float | Literal["learned", "predicted"] = "learned"
    condition_dim: int = 64  # size of the label or low-res image embedding
    conditional_prior: bool = False  # learn p(z|c) instead of N(0, I) (CVAE only)
    # vector: z [latent_dim]; spatial: an AutoencoderKL-shaped feature map z [latent_channels, S/f, S/f], f = 2**depth
    latent_shape: Literal["vector", "spatial"] = "vector"
    latent_channels: int = 4
    # lowres condition: full-size conv layers (width channels) that read the blown-up low-res image before the
    # decoder's output layer; 0 = that layer sees the image itself (older runs)
    lowres_layers: int = 0
    # where those layers run: full (on the image blown up to full size, SRCNN-like) or low (at the low-res size
    # with lowres_width channels, then a sub-pixel convolution up to full size: ESPCN-like, factor^2 cheaper)
    lowres_at: Literal["full", "low"] = "full"
    lowres_width: int = 0  # lowres_at=low: channels of those layers (0 = width)
    # What the encoder's and decoder's convolutions see past the image's edge. replicate: the edge pixels (and
    # features) repeated, so border pixels are read and predicted like inner ones; zeros: zero padding, where the
    # encoder reads a grey frame around every image, a stride-2 transposed convolution's border outputs get half the
    # inputs of inner ones, and reconstructions of colour images get a 1-2 px frame of the data's mean colour.
    # Unset: replicate for a run trained now; a checkpoint whose config lacks the key was trained with zeros and
    # loads so. The weights are the same either way.
    edges: Literal["zeros", "replicate"] | None = None
    # conv decoder: what gives the likelihood's parameters. conv: the last upsampling gives `width` full-size feature
    # maps and a 3x3 convolution reads them; upsample: the last stride-2 transposed convolution gives the parameters
    # itself (as DCGAN's and the beta-VAE papers' decoders do), which saves half the decoder's work at 32x32.
    decoder_output: Literal["conv", "upsample"] = "conv"
    # The decoder draws in its own frame and a similarity transform it predicts from z (rotation, scale, shift;
    # a spatial transformer, Jaderberg et al. 2015) moves the drawing into place: objects that move and turn are
    # drawn once, upright, instead of once per pose. Off: the convolutions draw every pose themselves.
    decoder_pose: bool = False

    def __post_init__(self):
        if self.lowres_layers < 0 or self.lowres_width < 0:
            raise ValueError(f"lowres_layers, lowres_width: expected 0 or more, got {self.lowres_layers}, "
                             f"{self.lowres_width}")
        if self.lowres_at == "low" and self.lowres_layers < 1:
            raise ValueError("lowres_at=low: needs lowres_layers of 1 or more")
        for name in ("latent_dim", "width", "depth"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if self.decoder_output == "upsample" and self.architecture != "conv":
            raise ValueError(f"decoder_output: upsample is for architecture conv, got {self.architecture}")
        if self.decoder_pose and self.latent_shape != "vector":
            raise ValueError("decoder_pose: needs latent_shape vector (a pose is read from one code vector)")
        if self.hidden < 0 or self.blocks_per_stage < 1:
            raise ValueError("hidden must be >= 0 and blocks_per_stage >= 1")
