"""Subsets of a data set: the recipe's `subset` section, meaning the same in every plugin.

    subset: {train: 1000}        # 1,000 training examples drawn with the recipe's seed; val and test whole

Each split keeps that many examples drawn at random with the recipe's seed, in the split's own order, so every
run of a seed (and its --resume, eval and sample) sees the same ones. A plugin that cuts its lists before its
costly work (fitting a tokenizer, computing features or statistics) sets Plugin.takes_subset and calls pick();
the engine cuts the datasets of any other plugin after its build_data.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Subset

SPLITS = ("train", "val", "test")


@dataclass
class SubsetConfig:
    """Examples per split a run uses (null: all of them), drawn at random with the recipe's seed."""

    train: int | None = None
    val: int | None = None
    test: int | None = None

    def __post_init__(self):
        for split in SPLITS:
            keep = getattr(self, split)
            if keep is not None and keep < 1:
                raise ValueError(f"{split}: expected a number of examples >= 1 (or null for all), got {keep}")


def chosen_indices(total: int, keep: int | None, seed: int, split: str) -> list[int]:
    """Indices kept from a split of `total` examples: `keep` of them drawn with (seed, split), in increasing order."""
    if keep is None or keep >= total:
        if keep is not None and keep > total:
            print(f"vaekit: note: subset.{split}={keep:,} but the {split} split has {total:,} examples: all are used",
                  file=sys.stderr, flush=True)
        return list(range(total))
    # One stream per split (crc32 of the name: stable across processes, unlike hash()) so that cutting the
    # validation split never changes which training examples are drawn.
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(split.encode()))
    return sorted(torch.randperm(total, generator=generator)[:keep].tolist())


def pick(items: Sequence, subset: SubsetConfig | None, seed: int, split: str) -> list:
    """The items of one split that the subset keeps (all of them without a subset)."""
    keep = getattr(subset, split) if subset is not None else None
    return [items[i] for i in chosen_indices(len(items), keep, seed, split)]


def cut_bundle(bundle, subset: SubsetConfig, seed: int):
    """The DataBundle with every split longer than the subset cut to it (and its training lengths with it)."""
    for split in SPLITS:
        dataset, keep = getattr(bundle, split), getattr(subset, split)
        if dataset is None or keep is None or len(dataset) <= keep:
            continue
        indices = chosen_indices(len(dataset), keep, seed, split)
        setattr(bundle, split, Subset(dataset, indices))
        if split == "train" and bundle.lengths is not None:
            bundle.lengths = [bundle.lengths[i] for i in indices]
    return bundle
