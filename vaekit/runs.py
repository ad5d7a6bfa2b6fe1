"""Runs: a model and its data rebuilt from what a run wrote, through the plugin that made them.

    model, plugin = vaekit.load("runs/mnist")                  # a run, a checkpoint or a pretrained folder
    data = build_recipe_data(plugin, recipe, assets)           # a recipe's datasets, each split cut to its subset

The layer above the plugin lookup and the recipe: it reads the files vaekit.io.checkpoint writes (safetensors
+ JSON, never a pickle), finds the plugin named in config.json, types its sections as the recipe did, and puts
the recipe's latent section around the plugin's networks (vaekit.model.latent).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .config.reading import RecipeError, build_dataclass
from .config.subsets import cut_bundle
from .io.checkpoint import ASSETS, CONFIG, WEIGHTS, CheckpointError, load_weights, read_json, read_newest
from .io.messages import quote
from .model.latent import LatentConfig, apply_latent_config
from .plugin import DataBundle, Plugin, PluginError, get_plugin


def load(path: str | Path, device: str | torch.device = "cpu"):
    """(model, plugin) from a run folder (its newest complete checkpoint, even while it trains), a checkpoint or a
    pretrained folder; never unpickles."""
    def build(folder: Path):
        model, plugin = build_from_config(folder)
        load_weights(model, folder / WEIGHTS, folder / CONFIG)
        return model, plugin

    model, plugin = read_newest(path, build)
    return model.to(device).eval(), plugin


def build_from_config(folder: Path):
    """(model with random weights, plugin) from a pretrained folder's config.json; errors name the file and key."""
    path = folder / CONFIG
    config = read_json(path)
    for key, kind in (("plugin", str), ("model", dict), ("info", dict)):
        if key not in config:
            raise CheckpointError(f"{path}: missing key {key!r}")
        if not isinstance(config[key], kind):
            expected = "a mapping" if kind is dict else "a string"
            raise CheckpointError(f"{path}: {key}: expected {expected}, got {quote(config[key])}")
    latent_dim = config["model"].get("latent_dim", 1)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise CheckpointError(f"{path}: model.latent_dim: expected a positive integer, got {quote(latent_dim)}")
    try:
        plugin = get_plugin(config["plugin"])
    except PluginError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        model_cfg = build_dataclass(plugin.model_config, config["model"], "model") if plugin.model_config \
            else config["model"]
    except RecipeError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        latent = build_dataclass(LatentConfig, config["latent"], "latent") if "latent" in config else None
    except RecipeError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        model = build_model(plugin, model_cfg, config["info"], folder / ASSETS, latent)
    except Exception as exc:  # the plugin's own code, fed a config it did not write: say which file it was
        raise CheckpointError(f"{path}: the {plugin.name} plugin cannot build a model from its 'model' and 'info' "
                              f"({type(exc).__name__}: {quote(exc)})") from None
    return model, plugin


def build_model(plugin, model_cfg, info: dict, assets: Path, latent=None, dataset=None):
    """plugin.build_model, the recipe's latent section around it, plus the config that save_pretrained and load need."""
    model = plugin.build_model(model_cfg, info, assets=Path(assets))
    latent = dataclasses.replace(latent) if latent is not None else LatentConfig()
    apply_latent_config(model, latent, dataset)
    model.config = {
        "plugin": plugin.name,
        "model": dataclasses.asdict(model_cfg) if dataclasses.is_dataclass(model_cfg) else dict(model_cfg),
        "info": info,
        "assets_dir": str(assets),
    }
    if latent != LatentConfig():  # only non-default latents are written, so older folders read the same
        model.config["latent"] = dataclasses.asdict(latent)
    return model


def build_recipe_data(plugin: Plugin, recipe, assets: Path) -> DataBundle:
    """The plugin's datasets for a recipe, each split cut to the recipe's subset section."""
    if plugin.takes_subset:
        bundle = plugin.build_data(recipe.data, seed=recipe.seed, assets=assets, subset=recipe.subset)
    else:
        bundle = plugin.build_data(recipe.data, seed=recipe.seed, assets=assets)
    return cut_bundle(bundle, recipe.subset, recipe.seed)
