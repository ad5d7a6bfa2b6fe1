"""Every source's dataset: uint8 images as floats in [0, 1]; random draws use torch's RNG, which checkpoints replay."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .images import ImageFileError


class ImageDataError(ImageFileError):
    """A data file (IDX, image) that cannot be used; the message names the file."""


class PixelDataset(Dataset):
    """uint8 images [N, C, H, W] (+ labels) served as floats in [0, 1] with the recipe's binarization."""

    def __init__(self, images: Tensor, labels: Tensor | None, *, binarize: str = "none", dequantize: bool = False,
                 condition: str = "none", lowres_factor: int = 4):
        self.images, self.labels = images, labels
        self.binarize, self.dequantize = binarize, dequantize
        self.condition, self.lowres_factor = condition, lowres_factor

    def __len__(self) -> int:
        return self.images.shape[0]

    def pixels(self, index: int) -> Tensor:
        """The image before any random binarization: [C, H, W] in [0, 1]."""
        return self.images[index].float() / 255.0

    def __getitem__(self, index: int) -> dict:
        grey = self.pixels(index)
        if self.binarize == "dynamic":
            x = torch.bernoulli(grey)
        elif self.dequantize:
            x = (self.images[index].float() + torch.rand(grey.shape)) / 256.0
        else:
            x = grey
        item = {"x": x}
        if self.labels is not None:  # the class, for `vaekit encode --split` maps (the model never sees it)
            item["label"] = self.labels[index].long()
        if self.condition == "label":
            item["c"] = self.labels[index].long()
        elif self.condition == "lowres":
            item["c"] = lowres(grey[None], self.lowres_factor)[0]
        return item


def lowres(pixels: Tensor, factor: int) -> Tensor:
    """The super-resolution condition: pixels [B, C, H, W] average-pooled by factor (ceil mode)."""
    return F.avg_pool2d(pixels, factor, ceil_mode=True)


def static_binarize(images: Tensor, seed: int) -> Tensor:
    """One fixed Bernoulli draw per pixel from a generator seeded by the recipe: uint8 in {0, 255}."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.bernoulli(images.float() / 255.0, generator=generator) * 255).to(torch.uint8)


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Resize uint8 images [N, C, h, w] to size x size (antialiased bilinear)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)
