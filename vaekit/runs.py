"""Runs: a model and its data rebuilt from what a run wrote, through the plugin that made them.

    model, plugin = vaekit.load("runs/mnist")                  # a run, a checkpoint or a pretrained folder
    recipe = run_recipe("runs/mnist")                          # the recipe it trained from (its recipe.yaml)
    data = build_recipe_data(plugin, recipe, assets)           # a recipe's datasets, each split cut to its subset

The layer above the plugin lookup and the recipe: it reads the files vaekit.io.checkpoint writes (safetensors
+ JSON, never a pickle), finds the plugin named in config.json, types its sections as the recipe did, and puts
the recipe's latent section around the plugin's networks (vaekit.model.latent).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import torch

from .config.reading import RecipeError, apply_overrides, build_dataclass, expand_env, read_yaml
from .config.recipe import Recipe, parse_recipe
from .config.semi_supervised import semi_supervised_bundle
from .config.subsets import cut_bundle
from .io.checkpoint import (
    ASSETS,
    CONFIG,
    WEIGHTS,
    CheckpointError,
    load_weights,
    read_json,
    read_newest,
    resolve_model_dir,
)
from .io.messages import quote
from .model.latent import LatentConfig, apply_latent_config
from .model.semi_supervised import m2_model
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


def run_recipe(run: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """The recipe a run trained from (the recipe.yaml of a run, of a checkpoint's run or of a pretrained folder),
    with KEY=VALUE overrides applied."""
    folder = resolve_model_dir(run)
    for candidate in (Path(run) / "recipe.yaml", folder / "recipe.yaml", folder.parent.parent / "recipe.yaml"):
        if candidate.is_file():
            return parse_recipe(expand_env(apply_overrides(read_yaml(candidate), list(overrides), str(candidate))),
                                str(candidate))
    raise RecipeError(f"{run}: no recipe.yaml found (the run folder keeps the recipe its data is built from)")


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
    """plugin.build_model, the recipe's latent section around it, plus the config that save_pretrained and load need.

    Semi-supervised data (`info["semi_supervised"]`) makes it an M2Model around the plugin's networks, or over the
    codes of the model in `info["semi_supervised"]["codes_model"]` (M1+M2; dataset, when given, holds its
    weights)."""
    latent = dataclasses.replace(latent) if latent is not None else LatentConfig()
    semi = info.get("semi_supervised")
    if semi is not None:
        model = _m2_model(plugin, model_cfg, info, assets, latent, dataset)
    else:
        model = plugin.build_model(model_cfg, info, assets=Path(assets))
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
    """The plugin's datasets for a recipe, each split cut to the recipe's subset section (objective.kind m2: with
    the classes M2 learns from, vaekit.config.semi_supervised)."""
    if plugin.takes_subset:
        bundle = plugin.build_data(recipe.data, seed=recipe.seed, assets=assets, subset=recipe.subset)
    else:
        bundle = plugin.build_data(recipe.data, seed=recipe.seed, assets=assets)
    bundle = cut_bundle(bundle, recipe.subset, recipe.seed)
    if recipe.objective.kind != "m2":
        return bundle
    cfg = recipe.semi_supervised
    if recipe.latent != LatentConfig():
        raise RecipeError("latent: objective.kind m2 builds its own latent (semi_supervised.latent_dim); remove the "
                          "latent section")
    if recipe.trainer.samples:
        raise RecipeError(f"trainer.samples: {recipe.trainer.samples}, but an M2 run writes no samples while it "
                          "trains; set trainer.samples: 0")
    codes_model = load(cfg.codes_from) if cfg.codes_from else None
    if codes_model is not None:
        codes_model, codes_plugin = codes_model
        if codes_plugin.name != plugin.name:
            raise RecipeError(f"semi_supervised.codes_from: {cfg.codes_from} is a run of plugin "
                              f"{codes_plugin.name!r}; this recipe's data is plugin {plugin.name!r}'s")
    bundle = semi_supervised_bundle(bundle, cfg, recipe.seed, codes_model)
    if codes_model is not None:
        config = {key: codes_model.config[key] for key in ("plugin", "model", "info", "latent")
                  if key in codes_model.config}
        bundle.info["semi_supervised"]["codes_model"] = config
        copy_assets(Path(codes_model.config["assets_dir"]), Path(assets) / "codes")
        bundle.train.codes_model = codes_model  # whose weights build_model copies into the new run's model
    return bundle


def copy_assets(source: Path, target: Path) -> None:
    """M1's assets (a tokenizer, say) into the M1+M2 run's assets/codes, once: the run then loads without M1."""
    if target.exists() or not source.is_dir() or not any(source.iterdir()):
        return
    shutil.copytree(source, target, symlinks=True)


def _m2_model(plugin, model_cfg, info: dict, assets: Path, latent, dataset):
    """The M2Model an M2 run trains (or loads): around the plugin's networks, or over M1's codes."""
    semi = info["semi_supervised"]
    if latent != LatentConfig():
        raise RecipeError("latent: an M2 model builds its own latent; remove the latent section")
    sizes = {key: semi[key] for key in ("num_classes", "latent_dim", "hidden")}
    if "codes_model" not in semi:
        base = plugin.build_model(model_cfg, info, assets=Path(assets))
        if tuple(base.latent_shape) != (base.latent_dim,):
            shape = "[" + ", ".join("T" if n is None else str(n) for n in base.latent_shape) + "]"
            raise RecipeError(f"objective.kind m2: M2 end to end reads a vector latent [D] from the plugin's encoder; "
                              f"the {plugin.name} model's latent is {shape}: train a VAE and give its run as "
                              "semi_supervised.codes_from (M1+M2 pools a sequence latent over time)")
        return m2_model(**sizes, base=base)
    codes = semi["codes_model"]
    codes_plugin = get_plugin(codes["plugin"])
    codes_cfg = build_dataclass(codes_plugin.model_config, codes["model"], "model") if codes_plugin.model_config \
        else codes["model"]
    codes_latent = build_dataclass(LatentConfig, codes["latent"], "latent") if "latent" in codes else None
    codes_model = build_model(codes_plugin, codes_cfg, codes["info"], Path(assets) / "codes", codes_latent)
    trained = getattr(dataset, "codes_model", None)
    if trained is not None:
        codes_model.load_state_dict(trained.state_dict())
    return m2_model(**sizes, code_dim=semi["code_dim"], codes_model=codes_model, segments=semi.get("segments", 1))
