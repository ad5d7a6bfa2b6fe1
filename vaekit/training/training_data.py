"""The training data as a run reads it: a seeded order that can start part-way into an epoch (so resume is exact)
and can bucket similar lengths, the loader over it, and the checks that the splits fit the run."""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import DataLoader, DistributedSampler

from .stop_signals import ignore_stops
from .training_errors import TrainingError


class SkippingSampler(DistributedSampler):
    """DistributedSampler (shuffled by seed + epoch) that can start part-way into an epoch.

    With `lengths` (one size per example) and `bucket_batches` > 0 it also groups similar lengths: each
    pool of bucket_batches * batch_size shuffled indices is sorted by length and cut into batches, and
    the batches are shuffled. Padded text batches then waste far less work; each epoch stays a seeded
    permutation, so resume (`skip`) is still exact.
    """

    skip = 0

    def __init__(self, dataset, *, batch_size: int = 1, lengths=None, bucket_batches: int = 0, **kwargs):
        super().__init__(dataset, **kwargs)
        self.batch_size, self.lengths, self.bucket_batches = batch_size, lengths, bucket_batches

    def __iter__(self):
        indices = list(super().__iter__())
        if self.lengths is not None and self.bucket_batches > 0:
            indices = self._bucketed(indices)
        return iter(indices[self.skip:])

    def _bucketed(self, indices: list[int]) -> list[int]:
        pool, size = self.bucket_batches * self.batch_size, self.batch_size
        batches = []
        for start in range(0, len(indices), pool):
            ordered = sorted(indices[start:start + pool], key=lambda i: self.lengths[i])
            batches += [ordered[i:i + size] for i in range(0, len(ordered), size)]
        full = [b for b in batches if len(b) == size]  # a short batch (dropped by drop_last) stays last
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed + self.epoch + 1))
        return [i for b in [full[j] for j in order.tolist()] + [b for b in batches if len(b) < size] for i in b]

    def __len__(self):
        return super().__len__() - self.skip


def training_loader(data, recipe, world: int, rank: int, device: torch.device) -> tuple[SkippingSampler, DataLoader]:
    """This process's share of the training set in the seeded order, batched (trainer.batch_size, bucket_batches,
    num_workers); the loader has at least one batch."""
    cfg, lengths = recipe.trainer, data.lengths
    if cfg.bucket_batches and (lengths is None or len(lengths) != len(data.train)):
        raise TrainingError(f"trainer.bucket_batches: the {recipe.plugin} plugin gives no length for each training "
                            f"example (DataBundle.lengths), so it cannot bucket; set trainer.bucket_batches=0")
    sampler = SkippingSampler(data.train, num_replicas=world, rank=rank, shuffle=True, seed=recipe.seed,
                              drop_last=True, batch_size=cfg.batch_size, lengths=lengths,
                              bucket_batches=cfg.bucket_batches)
    # A private generator keeps the loader from drawing on the global RNG, which resume restores.
    # Workers ignore stop signals (ignore_stops): sent to the process group, SIGTERM would kill them mid-batch,
    # while the main process finishes the step, checkpoints and ends them itself.
    loader = DataLoader(data.train, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=data.collate, num_workers=cfg.num_workers,
                        worker_init_fn=ignore_stops if cfg.num_workers > 0 else None,
                        generator=torch.Generator().manual_seed(recipe.seed), pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise TrainingError(f"the training set ({len(data.train)} examples) is smaller than one batch "
                            f"of {cfg.batch_size} per process; lower trainer.batch_size")
    return sampler, loader


def check_evaluation_splits(recipe, data) -> None:
    """Before the first step: an empty validation split (evaluated every trainer.eval_every steps), or an empty
    eval.split (what `vaekit eval RUN` reads), is one line naming the split, its size and the keys to change."""
    splits = {"val": data.val}
    splits.setdefault(recipe.eval.split, getattr(data, recipe.eval.split))
    for split, dataset in splits.items():
        if dataset is None or len(dataset) > 0:
            continue
        config = recipe.data
        names = [f.name for f in dataclasses.fields(config)] if dataclasses.is_dataclass(config) else list(config)
        keys = [f"data.{name} (now {getattr(config, name, None) if dataclasses.is_dataclass(config) else config[name]})"
                for name in names if split in name.split("_")]
        what = ("the run evaluates it every trainer.eval_every steps and at the end" if split == "val"
                else f"`vaekit eval RUN` reads it (eval.split={split})")
        other = "" if split == "val" else ", or set eval.split=val"
        raise TrainingError(f"the {split} split of the {recipe.plugin} data is empty (0 examples, beside "
                            f"{len(data.train)} training examples), and {what}: raise "
                            f"{' or '.join(keys) or 'its share in the data section'}, or give more data{other}")
