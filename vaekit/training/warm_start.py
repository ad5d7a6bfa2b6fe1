"""Start a run from another run's weights (`trainer.init_from`), all of them or named parts (`trainer.init_parts`).

The use that made it: Li et al. 2019 ("A Surprisingly Effective Fix for Deep Latent Variable Modeling of Text")
pretrain a text VAE as an autoencoder, keep its encoder, give the decoder fresh weights and train on with KL
thresholding (`objective.free_bits`):

    vaekit train recipes/text/ptb_lstm.yaml --out runs/ae objective.kl_target=null objective.beta=0
    vaekit train recipes/text/ptb_lstm.yaml --out runs/vae objective.kl_target=null objective.free_bits=0.5 \
        trainer.init_from=runs/ae "trainer.init_parts=[encoder]"

Only weights move, never the optimizer, schedule or step: the new run starts at step 0. A part is a top-level
module of the model (encoder, decoder, prior_net, ...). The weights must fit: same shapes, and the same assets
(a text run's vocabulary) where both runs have them, so that token 17 means the same word in both.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io.checkpoint import (
    ASSETS,
    CONFIG,
    WEIGHTS,
    CheckpointError,
    read_json,
    read_tensors,
    resolve_model_dir,
    stored_names,
)


class WarmStartError(ValueError):
    """trainer.init_from / init_parts cannot be applied; the message names the key and the file."""


def check_assets(source: Path, assets: Path) -> None:
    """Every asset file both runs have must be the same bytes (a vocabulary read differently breaks the weights)."""
    source_assets = source / ASSETS
    if not source_assets.is_dir():
        return
    for theirs in sorted(p for p in source_assets.rglob("*") if p.is_file()):
        ours = assets / theirs.relative_to(source_assets)
        if ours.is_file() and ours.read_bytes() != theirs.read_bytes():
            raise WarmStartError(f"trainer.init_from: {theirs} differs from this run's {ours}: the weights were "
                                 f"trained on other data assets (a vocabulary, say); build both from the same data")


def warm_start(model: torch.nn.Module, init_from: str | Path, parts: list[str] | None, assets: Path) -> dict:
    """Copy init_from's weights (only those under `parts` when given) into model; returns what was copied."""
    try:
        folder = resolve_model_dir(init_from)
        config = read_json(folder / CONFIG)
        tensors = read_tensors(folder / WEIGHTS)
    except CheckpointError as exc:
        raise WarmStartError(f"trainer.init_from: {exc}") from None
    plugin = getattr(model, "config", {}).get("plugin")
    if plugin and config.get("plugin") != plugin:
        raise WarmStartError(f"trainer.init_from: {folder / CONFIG} is a {config.get('plugin')!r} model, this run "
                             f"trains a {plugin!r} one")
    check_assets(folder, assets)
    ours = model.state_dict()
    tops = sorted({name.split(".")[0] for name in ours})
    if parts:
        unknown = [p for p in parts if p not in tops]
        if unknown:
            raise WarmStartError(f"trainer.init_parts: {', '.join(unknown)} is not a part of this model; "
                                 f"its parts: {', '.join(tops)}")
        wanted = [name for name in ours if name.split(".")[0] in parts]
    else:
        wanted = list(ours)
    stored = stored_names(ours, tensors)  # a tied weight is stored once, under either name
    sources = {name: stored[name] for name in wanted}
    missing = [name for name, source in sources.items() if source is None]
    if missing:
        raise WarmStartError(f"trainer.init_from: {folder / WEIGHTS} lacks {len(missing)} of the weights to copy "
                             f"(first: {missing[0]}); is it a model of the same recipe?")
    for name, source in sources.items():
        if tensors[source].shape != ours[name].shape:
            raise WarmStartError(f"trainer.init_from: {folder / WEIGHTS}: {source} has shape "
                                 f"{list(tensors[source].shape)}, this model's {list(ours[name].shape)}; the model "
                                 f"sections must agree")
    with torch.no_grad():  # state_dict() tensors share storage with the parameters: copying in place loads them
        for name, source in sources.items():
            ours[name].copy_(tensors[source])
    return {"init_from": str(folder), "init_parts": parts or ["all"], "tensors": len(wanted)}
