"""Semi-supervised data: the recipe's `semi_supervised` section, which training examples keep their label, and
(M1+M2) the codes of a trained VAE as the data M2 reads.

    objective: {kind: m2, alpha: 50}
    semi_supervised: {labelled: 100}            # 10 labelled examples per class (10 classes), drawn with the seed
    semi_supervised: {labelled: 100, codes_from: runs/mnist}     # M1+M2: M2 on that run's posterior means
    semi_supervised: {labelled: 50, codes_from: runs/fsdd, segments: 3}  # a sequence latent pooled over time

An item's "label" is its class (-1: no label; a plugin reads it from the data: an image folder's class
subfolders, with `unlabelled/` for images without one; a speech metadata.csv row with an empty label). The
engine gives M2 each training example's class in "c", -1 for those left unlabelled, and repeats the labelled
ones so that they make up `labelled_share` of each epoch (a batch then holds labelled examples at every step).
Validation and test splits keep their labelled examples, c = label: the ELBO with the label observed and the
classification error are measured on them. M1+M2 over a run whose latent is a sequence (a code per stretch of
time) reads one vector per example, its codes pooled over the valid steps (vaekit.core.pooling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..core.batch import first_tensor
from ..core.pooling import pooled_code
from ..io.messages import quote
from .reading import RecipeError

UNLABELLED = -1


@dataclass
class SemiSupervisedConfig:
    """objective.kind m2: how many labels M2 learns from, and its networks' sizes (M1+M2: the codes' run)."""

    labelled: int | None = None  # labelled training examples, the same number per class, drawn with the seed; null: all
    labelled_share: float = 0.5  # share of each epoch's examples that are labelled ones (repeated to reach it)
    codes_from: str | None = field(default=None, metadata={"must_exist": True})  # M1+M2: a trained VAE run
    code_samples: bool = True  # M1+M2: train on codes drawn from q(z|x) (noise that regularises), not their means
    code_noise: float = 1.0  # M1+M2: the drawn codes' spread, times their spread under q(z|x) (> 1: more noise)
    segments: int = 3  # M1+M2 over a sequence latent: equal stretches of time whose mean codes M2 reads, in order
    latent_dim: int = 50  # M2's z
    hidden: int = 500  # units of each hidden layer of M2's MLPs

    def __post_init__(self):
        if self.labelled is not None and self.labelled < 1:
            raise ValueError(f"labelled: expected a number of labelled examples >= 1 (or null for all), "
                             f"got {self.labelled}")
        if not 0.0 < self.labelled_share < 1.0:
            raise ValueError(f"labelled_share: expected a share between 0 and 1, got {self.labelled_share}")
        if not self.code_noise > 0:
            raise ValueError(f"code_noise: expected a positive multiple of the codes' spread, got {self.code_noise}")
        if self.segments < 1:
            raise ValueError(f"segments: expected a number of stretches of time >= 1, got {self.segments}")
        if self.latent_dim < 1 or self.hidden < 1:
            raise ValueError(f"latent_dim, hidden: expected positive integers, got {self.latent_dim}, {self.hidden}")


def labels_of(dataset) -> torch.Tensor:
    """Every item's "label" [N] (-1 where an item has none); read from a `labels` tensor the dataset keeps (or the
    dataset a Subset cuts) without loading its items."""
    base, rows = (dataset.dataset, list(dataset.indices)) if isinstance(dataset, Subset) else (dataset, None)
    kept = getattr(base, "labels", None)
    if isinstance(kept, torch.Tensor) and kept.dim() == 1 and len(kept) == len(base):
        return (kept if rows is None else kept[rows]).long().clone()
    labels = []
    for i in range(len(dataset)):
        label = dataset[i].get("label")
        labels.append(UNLABELLED if label is None else int(label))
    return torch.tensor(labels, dtype=torch.long)


def class_name(names: list[str], label: int) -> str:
    """A class as a message names it: its quoted name, or its index when the data names none."""
    return quote(names[label]) if 0 <= label < len(names) else str(label)


def labelled_indices(labels: torch.Tensor, labelled: int | None, num_classes: int, seed: int,
                     names: list[str]) -> list[int]:
    """The training examples that keep their label: labelled / num_classes of each class, drawn with the seed
    (one stream per class), in increasing order; all labelled ones when labelled is None."""
    if labelled is None:
        return (labels >= 0).nonzero().squeeze(1).tolist()
    if labelled % num_classes:
        raise RecipeError(f"semi_supervised.labelled: {labelled} labelled examples do not split evenly over the "
                          f"{num_classes} classes; give a multiple of {num_classes}")
    per_class, chosen = labelled // num_classes, []
    for label in range(num_classes):
        members = (labels == label).nonzero().squeeze(1)
        if len(members) < per_class:
            raise RecipeError(f"semi_supervised.labelled: {labelled} asks {per_class} labelled examples of each class, "
                              f"but class {class_name(names, label)} has {len(members)} in the training split; "
                              f"lower it to at most {num_classes * min_count(labels, num_classes)}")
        generator = torch.Generator().manual_seed(seed * 1_000_003 + label)
        chosen += members[torch.randperm(len(members), generator=generator)[:per_class]].tolist()
    return sorted(chosen)


def min_count(labels: torch.Tensor, num_classes: int) -> int:
    """Examples of the rarest class."""
    return min(int((labels == label).sum()) for label in range(num_classes))


def check_labels(splits: dict[str, torch.Tensor], names: list[str]) -> int:
    """The number of classes; one line for a training split without a label, or a class that it lacks."""
    train = splits["train"]
    if not (train >= 0).any():
        raise RecipeError(f"objective.kind m2: none of the {len(train)} training examples has a label; give labels "
                          "(an image folder's class subfolders, a metadata.csv label column)")
    num_classes = len(names) if names else int(train.max()) + 1
    present = set((train[train >= 0]).tolist())
    for split, labels in splits.items():
        for label in sorted(set(labels[labels >= 0].tolist())):
            if label >= num_classes or label not in present:
                what = "the data's classes" if label >= num_classes else "the training split"
                raise RecipeError(f"objective.kind m2: the {split} split labels {int((labels == label).sum())} "
                                  f"example(s) with class {class_name(names, label)}, which {what} does not have "
                                  f"({num_classes} classes: {', '.join(names[:10]) or 'unnamed'})")
    missing = [label for label in range(num_classes) if label not in present]
    if missing:
        raise RecipeError(f"objective.kind m2: class {class_name(names, missing[0])} has no labelled training example; "
                          "give at least one per class")
    return num_classes


class LabelledItems(Dataset):
    """Items of a dataset, in a given order (repeats allowed), each with its class in "c" or -1 without one."""

    def __init__(self, dataset, order: list[int], keep_label: set[int]):
        self.dataset, self.order, self.keep_label = dataset, order, keep_label

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict:
        j = self.order[i]
        item = dict(self.dataset[j])
        label = int(item.get("label", UNLABELLED))
        item["label"] = torch.tensor(label)
        item["c"] = torch.tensor(label if j in self.keep_label else UNLABELLED)
        return item


class CodeItems(Dataset):
    """Code vectors of a dataset (M1+M2): {"x": code, "c": class or -1, "label"}; with scales, x is drawn."""

    def __init__(self, means: torch.Tensor, scales: torch.Tensor | None, labels: torch.Tensor, classes: torch.Tensor):
        self.means, self.scales, self.labels, self.classes = means, scales, labels, classes

    def __len__(self) -> int:
        return len(self.means)

    def __getitem__(self, i: int) -> dict:
        x = self.means[i]
        if self.scales is not None:  # a fresh draw from q(z|x) each time, as dynamic binarization draws pixels
            x = x + self.scales[i] * torch.randn_like(x)
        return {"x": x, "c": self.classes[i], "label": self.labels[i]}


def reads_codes(info: dict) -> bool:
    """Whether a run's data is M1+M2's code vectors rather than the plugin's own items (no plugin hook reads it)."""
    return "code_dim" in (info.get("semi_supervised") or {})


POOLED_DRAWS = 16  # draws from q(z|x) that estimate the spread of a pooled code


@torch.no_grad()
def encode_means(model, dataset, collate, batch_size: int = 500, segments: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One code per example [N, D']: the posterior mean of a vector latent, or the pooled means of a sequence
    latent (vaekit.core.pooling); and its standard deviation under q(z|x) (a sequence: over POOLED_DRAWS pooled
    draws, seeded, leaving the global random state alone)."""
    means, scales = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
            q = model.posterior(batch["x"], batch.get("c"))
            try:
                code = pooled_code(q, segments=segments)
            except ValueError as exc:
                raise RecipeError(f"semi_supervised.codes_from: {exc}") from None
            if q.event_dims == 1:
                spread = q.std
            else:
                spread = torch.stack([pooled_code(q, q.sample(), segments) for _ in range(POOLED_DRAWS)]).std(0)
            means.append(code.float())
            scales.append(spread.float())
    if not means:
        empty = torch.zeros(0, model.latent_dim)
        return empty, empty
    return torch.cat(means), torch.cat(scales)


def semi_supervised_bundle(bundle, cfg: SemiSupervisedConfig, seed: int, codes_model=None):
    """The DataBundle as M2 reads it: training classes in "c" (-1 unlabelled), labelled ones repeated to
    cfg.labelled_share; evaluation splits cut to their labelled examples; (M1+M2) each split as codes."""
    splits = {name: getattr(bundle, name) for name in ("train", "val", "test") if getattr(bundle, name) is not None}
    for dataset in splits.values():
        if len(dataset) and "c" in dataset[0]:
            raise RecipeError("objective.kind m2: the data carries the plugin's own condition (c); M2 conditions on "
                              "the class itself: turn the data's condition off")
    labels = {name: labels_of(dataset) for name, dataset in splits.items()}
    names = [str(n) for n in bundle.info.get("class_names") or []]
    num_classes = check_labels(labels, names)
    kept = labelled_indices(labels["train"], cfg.labelled, num_classes, seed, names)
    unlabelled = sorted(set(range(len(labels["train"]))) - set(kept))
    repeats = 1
    if unlabelled:
        repeats = max(1, round(cfg.labelled_share / (1 - cfg.labelled_share) * len(unlabelled) / len(kept)))
    orders = {"train": unlabelled + kept * repeats}
    for name in ("val", "test"):
        if name in splits:
            orders[name] = (labels[name] >= 0).nonzero().squeeze(1).tolist()
    info = dict(bundle.info)
    info["semi_supervised"] = {"num_classes": num_classes, "class_names": names or [str(i) for i in range(num_classes)],
                               "latent_dim": cfg.latent_dim, "hidden": cfg.hidden, "labelled": len(kept),
                               "segments": cfg.segments,
                               "unlabelled": len(unlabelled)}
    if codes_model is None:
        for name, order in orders.items():
            setattr(bundle, name, LabelledItems(splits[name], order, set(kept) if name == "train" else set(order)))
        bundle.lengths = [bundle.lengths[i] for i in orders["train"]] if bundle.lengths is not None else None
    else:
        for name, order in orders.items():
            means, scales = encode_means(codes_model, torch.utils.data.Subset(splits[name], sorted(set(order))),
                                         bundle.collate, segments=cfg.segments)
            row = {j: r for r, j in enumerate(sorted(set(order)))}
            rows = torch.tensor([row[j] for j in order], dtype=torch.long)
            keep = set(kept) if name == "train" else set(order)
            classes = torch.tensor([int(labels[name][j]) if j in keep else UNLABELLED for j in order])
            draw = cfg.code_noise * scales[rows] if cfg.code_samples and name == "train" else None
            setattr(bundle, name, CodeItems(means[rows], draw, labels[name][order], classes))
        bundle.collate, bundle.lengths = None, None
        info["semi_supervised"]["code_dim"] = int(first_tensor(bundle.train[0]["x"]).shape[-1])
    bundle.info = info
    return bundle
