"""Encode inputs to latent codes: posterior means as a .npy array, plus a 2-D map (PCA) coloured by label.

    vaekit encode runs/mnist digits/3/*.png digits/7/*.png -o codes.npy   # files: labels are their folders
    vaekit encode runs/ptb_lstm "the market closed higher" more.txt -o codes.npy
    vaekit encode runs/mnist --split test -o codes.npy                    # the recipe's data and its labels

Writes codes.npy [N, *latent shape] (float32; a latent with a time axis gives one [D] code per input, the
mean over its valid steps), codes.labels.txt (one label per row, where labels exist: the class names the
checkpoint records for a data split, the folder names for files) and
codes.png (the first two principal components). The plugin only turns files into a model-ready batch
(Plugin.load_inputs); everything about latents happens here, the same for every modality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.batch import to_device
from ..io.safe_writes import atomic_open, atomic_write_text

FILES_PER_BATCH = 256


def _labels_of(batch: dict, n: int) -> list[str] | None:
    """A batch's class labels as strings: its "label", else a one-column class condition "c"; None if neither."""
    for key in ("label", "c"):
        value = batch.get(key)
        if torch.is_tensor(value) and value.shape[:1] == (n,) and value.dim() == 1 and not value.is_floating_point():
            return [str(v) for v in value.tolist()]
    return None


def utterance_codes(q) -> torch.Tensor:
    """The posterior mean; a latent with a padded time axis [B, T, D] gives its mean over valid steps, [B, D]."""
    if q.mask is None:
        return q.mean
    valid = q.mask.to(q.mean.dtype).unsqueeze(-1)  # [B, T, 1]: every input gets one code, whatever its length
    return (q.mean * valid).sum(1) / valid.sum(1).clamp(min=1)


@torch.no_grad()
def encode_batches(model, batches) -> tuple[np.ndarray, list[str] | None]:
    """Posterior means of every batch {"x", "c"?, "label"?}: codes [N, ...] float32 and labels (or None)."""
    was_training = model.training
    model.eval()
    codes, labels = [], []
    for batch in batches:
        batch = to_device(batch, model.device)
        mean = utterance_codes(model.posterior(batch["x"], batch.get("c"))).float().cpu()
        codes.append(mean.numpy())
        labels.append(_labels_of(batch, mean.shape[0]))
    model.train(was_training)
    if not codes:
        raise ValueError("nothing to encode: no inputs")
    return np.concatenate(codes), None if any(lab is None for lab in labels) else sum(labels, [])


def pca_2d(codes: np.ndarray) -> np.ndarray:
    """The first two principal components of codes [N, ...] flattened: [N, 2] (zeros where a component is missing)."""
    flat = codes.reshape(len(codes), -1).astype(np.float64)
    centred = flat - flat.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = np.zeros((len(codes), 2))
    points[:, :min(2, len(vt))] = centred @ vt[:2].T
    return points


def plot_codes(points: np.ndarray, labels: list[str] | None, path: Path, title: str,
               classes: list[str] | None = None) -> Path:
    """Scatter the 2-D points, one colour per label (a legend when there are at most 20 labels), in the order of
    `classes` where given (the data's class order), else "2" before "10"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    else:
        present = set(labels)
        names = [name for name in classes if name in present] if classes and present <= set(classes) \
            else sorted(present, key=lambda s: (len(s), s))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for i, name in enumerate(names):
            chosen = np.array([lab == name for lab in labels])
            ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, color=cmap(i % cmap.N), label=name)
        if len(names) <= 20:
            ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, dpi=120, format="png")
    plt.close(fig)
    return path


def file_batches(plugin, model, inputs: list[str]):
    """Inputs (files, or sentences for text) in chunks, as the plugin's model-ready batches; labels = folders.

    Labels come from the inputs' parent folders when files from two or more folders are given (the ImageFolder
    convention: digits/3/a.png is a 3).
    """
    folders = [Path(item).parent.name if Path(item).is_file() else None for item in inputs]
    labelled = None not in folders and len(set(folders)) > 1
    for start in range(0, len(inputs), FILES_PER_BATCH):
        chunk = inputs[start:start + FILES_PER_BATCH]
        batch = {"x": plugin.load_inputs(model, chunk)}
        if labelled:
            batch["label_names"] = folders[start:start + FILES_PER_BATCH]
        yield batch


def write_codes(codes: np.ndarray, labels: list[str] | None, out: Path, title: str,
                classes: list[str] | None = None) -> list[Path]:
    """codes.npy, codes.labels.txt (with labels) and codes.png beside it (its legend in the order of classes)."""
    out = Path(out)
    if out.suffix != ".npy":
        raise ValueError(f"-o {out}: expected a .npy file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out, "wb") as f:  # never through a link planted in the run folder
        np.save(f, codes.astype(np.float32))
    written = [out]
    if labels is not None:
        label_file = out.with_suffix(".labels.txt")
        atomic_write_text(label_file, "".join(f"{lab}\n" for lab in labels))
        written.append(label_file)
    written.append(plot_codes(pca_2d(codes), labels, out.with_suffix(".png"), title, classes))
    return written


def encode_files(plugin, model, inputs: list[str], out: Path) -> list[Path]:
    """Encode files (or sentences) through the plugin's load_inputs; see the module docstring."""
    names: list[str] = []

    def batches():
        for batch in file_batches(plugin, model, inputs):
            names.extend(batch.pop("label_names", []))
            yield batch

    codes, _ = encode_batches(model, batches())
    labels = names if len(names) == len(codes) else None
    return write_codes(codes, labels, out, f"{len(codes)} codes (PCA of posterior means)")


def class_names_of(info: dict) -> list[str] | None:
    """The class names a model's data info records (image: class_names, speech: labels), in index order."""
    names = info.get("class_names") or info.get("labels")
    return [str(name) for name in names] if isinstance(names, list) and names else None


def named_labels(labels: list[str] | None, names: list[str] | None) -> list[str] | None:
    """Class indices ("0", "1", ...) as their names when every index has one; otherwise the labels as they are."""
    if labels is None or names is None or not all(lab.isdigit() and int(lab) < len(names) for lab in labels):
        return labels
    return [names[int(lab)] for lab in labels]


def encode_split(model, loader, out: Path, split: str) -> list[Path]:
    """Encode a data split (a DataLoader of the recipe's data); labels from the items' label or class condition,
    written as the class names the checkpoint records."""
    codes, labels = encode_batches(model, loader)
    names = class_names_of(getattr(model, "config", {}).get("info", {}))
    return write_codes(codes, named_labels(labels, names), out, f"{split}: {len(codes)} codes (PCA of posterior means)",
                       names)
