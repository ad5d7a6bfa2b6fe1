"""Checkpoints and pretrained folders: safetensors + JSON, written atomically, loaded without unpickling.

A pretrained folder (what save_pretrained writes, and what every checkpoint also is) holds

    model.safetensors   the weights
    config.json         plugin name, model section, data info, vaekit version
    assets/             plugin files the model needs (a tokenizer, say)

and a training checkpoint adds `training.safetensors` + `state.json` (optimizer, scheduler, RNG
and data-order state). Nothing here calls pickle: opening someone else's files cannot run code.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._version import __version__
from .messages import quote
from .safe_writes import WriteError, describe, refuse_link, remove_entry

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TRAINING = "training.safetensors"
STATE = "state.json"
ASSETS = "assets"
BEST = "best-step-"  # RUN/checkpoints/best-step-N: weights only, kept by trainer.keep_best
BEST_RECORD = "best.json"  # inside it: the step and the validation ELBO that chose it


class CheckpointError(Exception):
    """A checkpoint or pretrained folder that cannot be read; the message names the file."""


# -- tensors inside nested state (optimizer, RNG) <-> safetensors + JSON -------------------------

def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """Replace every tensor in nested dicts/lists by {"__tensor__": key}, collecting it in tensors."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[flatten_state(k, tensors, prefix), flatten_state(v, tensors, prefix)]
                             for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [flatten_state(v, tensors, prefix) for v in obj], "tuple": isinstance(obj, tuple)}
    if isinstance(obj, np.ndarray):
        return {"__tensor__": flatten_state(torch.from_numpy(obj.copy()), tensors, prefix)["__tensor__"],
                "numpy": True}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of flatten_state."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            tensor = tensors[obj["__tensor__"]]
            return tensor.numpy() if obj.get("numpy") else tensor
        if "__dict__" in obj:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [unflatten_state(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
    return obj


def rng_state() -> dict:
    """Python, NumPy, torch CPU and CUDA generator states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- atomic folders -------------------------------------------------------------------------------

def _write_json(path: Path, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def commit_folder(tmp: Path, final: Path) -> None:
    """Move a fully written temporary folder into place; a crash before the rename leaves final untouched."""
    _fsync_tree(tmp)
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


# -- model weights: each tensor stored once, in memory of its own -------------------------------
# safetensors.torch.save_model/load_model refuse a model whose parameters are views into a larger buffer, and on
# CUDA every LSTM/GRU is one: cuDNN packs an RNN's weights into one flat buffer. So vaekit stores tied weights
# (one tensor under two names) once, as save_model does, and copies views out of their buffer.

def _tensor_identity(name: str, tensor: torch.Tensor) -> tuple:
    """Equal for the names of one tied tensor (same memory, shape, strides); empty tensors are never tied."""
    if tensor.numel() == 0:
        return (name,)
    return (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())


def _tied_groups(state: dict[str, torch.Tensor]) -> list[list[str]]:
    """A state dict's names, grouped by the tensor they name (a group of several: tied weights)."""
    groups: dict[tuple, list[str]] = {}
    for name, tensor in state.items():
        groups.setdefault(_tensor_identity(name, tensor), []).append(name)
    return list(groups.values())


def stored_names(state: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> dict[str, str | None]:
    """For each name of a state dict, the name a file's tensors hold it under: its own, or a tied twin's (a tied
    tensor is stored once, under any one of its names); None where neither is there."""
    sources = {}
    for names in _tied_groups(state):
        twin = next((name for name in names if name in tensors), None)
        sources.update({name: name if name in tensors else twin for name in names})
    return sources


def weights_to_save(model) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The model's tensors, a tied one under the first of its names in sorted order (save_model's choice), each
    a CPU copy that owns its memory; also {other name: stored name} for the tied ones (the file's metadata)."""
    state = model.state_dict()
    tensors, tied = {}, {}
    for names in _tied_groups(state):
        kept = sorted(names)[0]
        tensors[kept] = state[kept].detach().to("cpu", copy=True).contiguous()
        tied.update({name: kept for name in names if name != kept})
    return tensors, tied


def _write_pretrained(model, folder: Path) -> None:
    config = dict(model.config)
    if not {"plugin", "model", "info"} <= config.keys():
        raise CheckpointError("this VAE was not built through a plugin (model.config lacks plugin/model/info), "
                              "so vaekit.load could not rebuild it; build it with vaekit.runs.build_model")
    config.setdefault("vaekit_version", _version())
    assets = config.pop("assets_dir", None)
    tensors, tied = weights_to_save(model)
    save_file(tensors, str(folder / WEIGHTS), metadata=tied or None)
    _write_json(folder / CONFIG, config)
    if assets and Path(assets).is_dir():
        shutil.copytree(assets, folder / ASSETS)
    else:
        (folder / ASSETS).mkdir()


def save_pretrained(model, directory: str | Path, records: dict[str, dict] | None = None) -> Path:
    """Write model.safetensors, config.json and assets/ (and records: file name -> JSON) to directory, atomically."""
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        _write_pretrained(model, tmp)
        for name, record in (records or {}).items():
            _write_json(tmp / name, record)
        commit_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def save_checkpoint(model, training_state: dict, folder: Path) -> Path:
    """A pretrained folder plus training state (optimizer, scheduler, RNG, data order), atomically.

    A failed write (full disk, a file-size limit) is a WriteError naming the folder; what was half
    written is removed and the checkpoints already there are untouched. A link on the way (a planted
    RUN/checkpoints -> elsewhere) is refused, and a run folder removed meanwhile is not made again.
    """
    refuse_link(folder)
    tmp = None
    try:
        folder.parent.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
        _write_pretrained(model, tmp)
        tensors: dict[str, torch.Tensor] = {}
        skeleton = flatten_state(training_state, tensors)
        save_file(tensors, str(tmp / TRAINING))
        _write_json(tmp / STATE, {"step": training_state.get("step"), "state": skeleton})
        commit_folder(tmp, folder)
    except OSError as exc:
        raise WriteError(folder, f"cannot write the checkpoint ({describe(exc)})") from None
    except SafetensorError as exc:  # safetensors reports a failed write as its own error
        raise WriteError(folder, f"cannot write the checkpoint ({exc})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def remove_checkpoint(folder: Path) -> None:
    """Delete a checkpoint folder so that no kill leaves it half deleted: rename it out of sight, then delete."""
    refuse_link(folder)  # a planted RUN/checkpoints link: nothing is renamed or deleted through it
    trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}")
    os.replace(folder, trash)  # one atomic step: step-N is either whole or gone
    shutil.rmtree(trash, ignore_errors=True)


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Delete what a killed process left in RUN/checkpoints (.tmp-* writes, .old-* and .trash-* folders)."""
    folder = Path(run_dir) / "checkpoints"
    refuse_link(folder / ".tmp")
    found = [p for pattern in (".tmp-*", ".old-*", ".trash-*") for p in folder.glob(pattern)] \
        if folder.is_dir() else []
    for path in found:
        remove_entry(path)
    return found


# -- reading --------------------------------------------------------------------------------------

def read_json(path: Path) -> dict:
    """A JSON object from path, or a CheckpointError naming it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, or a CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:  # RuntimeError: gone since is_file()
        if not path.is_file():
            raise CheckpointError(f"{path}: missing") from None
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def checkpoints(run_dir: Path, prefix: str = "step-") -> list[Path]:
    """The run's checkpoint folders (prefix N), oldest first."""
    folder = Path(run_dir) / "checkpoints"
    found = [p for p in folder.glob(f"{prefix}*") if p.is_dir() and p.name[len(prefix):].isdigit()] \
        if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(prefix):]))


def best_checkpoint(run_dir: Path) -> Path | None:
    """RUN/checkpoints/best-step-N, the weights with the best validation ELBO (trainer.keep_best), if any."""
    found = checkpoints(run_dir, BEST)
    return found[-1] if found else None


def resolve_model_dir(path: str | Path) -> Path:
    """A pretrained folder from a run folder (its best weights if trainer.keep_best kept them, else its latest
    checkpoint), a checkpoint or a pretrained folder."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"{path}: no such run or model folder")
    best = best_checkpoint(path)
    if best is not None:
        return best
    found = checkpoints(path)
    if not found:
        raise CheckpointError(f"{path}: no {CONFIG} and no checkpoints/step-N inside; is it a vaekit run?")
    return found[-1]


READ_TRIES = 3  # a run that checkpoints and prunes every step may remove the newest again while it is read


def read_newest(path: str | Path, read):
    """read(folder) for the folder resolve_model_dir(path) picks; when path is a run whose training pruned that
    checkpoint between the listing and the reading (CheckpointError, the folder gone), its new newest is read."""
    path = Path(path)
    for attempt in range(READ_TRIES):
        folder = None
        try:
            folder = resolve_model_dir(path)
            return read(folder)
        except CheckpointError:
            # A listing taken while the trainer renames may even miss both the new and the old checkpoint.
            pruned = not (path / CONFIG).is_file() and (path / "checkpoints").is_dir() and \
                (folder is None or not folder.exists())
            if not pruned or attempt == READ_TRIES - 1:
                raise


def load_weights(model, weights: Path, config: Path) -> None:
    """Load model.safetensors into model; a missing, torn or mismatched file is a CheckpointError naming it."""
    tensors = read_tensors(weights)  # reads the whole file: a torn one fails here, naming it
    expected = model.state_dict()
    sources = stored_names(expected, tensors)
    missing = [name for name, source in sources.items() if source is None]
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{weights}: does not match the model of {config} (missing {sorted(missing)[:5]}, "
                              f"unexpected {unexpected[:5]})")
    state = {name: tensors[source] for name, source in sources.items()}
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{weights}: {name} has shape {list(tensor.shape)}, but {config} builds "
                                  f"{list(expected[name].shape)}")
    try:  # copies into the model's own tensors, wherever they live (a cuDNN buffer included)
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{weights}: cannot load weights ({quote(exc)})") from None


def run_dir_of(model) -> Path | None:
    """The run folder a model was loaded from (RUN/checkpoints/step-N), else its pretrained folder; None if built."""
    assets = model.config.get("assets_dir")
    if not assets:
        return None
    folder = Path(assets).parent
    return folder.parent.parent if folder.parent.name == "checkpoints" else folder


def load_training_state(folder: Path) -> dict:
    """The training state saved by save_checkpoint, or a CheckpointError naming the file and key."""
    path = folder / STATE
    saved = read_json(path)
    if not isinstance(saved.get("state"), dict):
        raise CheckpointError(f"{path}: missing key 'state' (the optimizer, scheduler and RNG state)")
    try:
        state = unflatten_state(saved["state"], read_tensors(folder / TRAINING))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: 'state' does not match {folder / TRAINING} ({exc!r})") from None
    needed = {"step": int, "epoch": int, "batch_in_epoch": int, "optimizer": dict, "scheduler": dict, "rng": list}
    for key, kind in needed.items():
        if not isinstance(state, dict) or not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise CheckpointError(f"{path}: state.{key}: missing or not a {kind.__name__}")
    return state


def checkpoint_step(folder: Path) -> int:
    """N of a checkpoint folder step-N or best-step-N."""
    return int(Path(folder).name.rsplit("-", 1)[1])


def _version() -> str:
    return __version__
