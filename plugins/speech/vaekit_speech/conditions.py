"""Conditions of a speech CVAE: parsed from `key=value` text or FSDD file names, and grids of them for sampling."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import Tensor

from vaekit import PluginError

from .data_config import FSDD_NAME


def parse_condition_text(text: str, info: dict, where: str) -> Tensor:
    """`key=value[,key=value]` -> [1, n_conditions] class indices, -1 for columns not named."""
    conditions = info.get("conditions") or []
    if not conditions:
        raise PluginError(f"{where} {text!r}: this model is unconditional (train with data.condition_on)")
    values = [-1] * len(conditions)
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            column = next((i for i, cond in enumerate(conditions) if key in (cond["name"], cond["key"])), None)
            if column is None:
                names = ", ".join(cond["name"] for cond in conditions)
                raise PluginError(f"{where} {text!r}: unknown condition {key!r}; this model takes {names}")
        else:  # a bare value names the one column that has such a class
            key, value = None, part
            column = next((i for i, cond in enumerate(conditions) if value in cond["classes"]), None)
            if column is None:
                raise PluginError(f"{where} {text!r}: {value!r} is no class of this model; write KEY=VALUE, "
                                  f"e.g. {conditions[0]['name']}={conditions[0]['classes'][0]}")
        if values[column] >= 0:  # `speaker=a,speaker=b` must not silently mean b
            raise PluginError(f"{where} {text!r}: {conditions[column]['name']} is given twice; give each "
                              "condition once")
        classes = conditions[column]["classes"]
        if value not in classes:
            raise PluginError(f"{where} {text!r}: {conditions[column]['name']} must be one of "
                              f"{', '.join(classes)}; got {value!r}")
        values[column] = classes.index(value)
    return torch.tensor([values])


def fsdd_condition_text(path: str | Path, info: dict) -> str | None:
    """`digit=3,speaker=george` from an FSDD file name, or None when the name does not follow the pattern."""
    match = FSDD_NAME.match(Path(path).stem)
    if not match:
        return None
    parsed = {"label": match.group(1), "speaker": match.group(2)}
    return ",".join(f"{cond['key']}={parsed[cond['key']]}" for cond in info.get("conditions", []))


def source_condition(info: dict, path: str | Path, source: str | None, device) -> Tensor | None:
    """The condition an input was recorded under: --source, else parsed from its FSDD file name."""
    if not info.get("conditions"):
        return None
    text = source or fsdd_condition_text(path, info)
    if text is None:
        names = ",".join(f"{cond['name']}=..." for cond in info["conditions"])
        raise PluginError(f"{path}: the model is conditional; give the input's condition with --source {names} "
                          "(interpolate: --source-a / --source-b), or use an FSDD name {digit}_{speaker}_{index}.wav")
    condition = parse_condition_text(text, info, "--source" if source else str(path))
    missing = [cond["name"] for cond, v in zip(info["conditions"], condition[0].tolist(), strict=True) if v < 0]
    if missing:
        raise PluginError(f"{path}: source condition {text!r} lacks {', '.join(missing)}")
    return condition.to(device)


def resolve_target(source: Tensor | None, target: Tensor | None) -> Tensor | None:
    """The decoding condition: the target's given columns, the source's for the rest (-1)."""
    if target is None or source is None:
        return source
    target = target.to(source.device).reshape(1, -1)
    return torch.where(target >= 0, target, source)


def condition_grid(info: dict, condition: Tensor | None, n: int, device) -> Tensor | None:
    """n conditions: given columns fixed, the others cycling through the product of their classes."""
    conditions = info.get("conditions") or []
    if not conditions:
        return None
    given = [-1] * len(conditions) if condition is None else condition.reshape(-1).tolist()
    free = [range(len(cond["classes"])) if v < 0 else [v] for cond, v in zip(conditions, given, strict=True)]
    # Earlier columns (the label) vary fastest, so the first n samples cover every digit.
    combos = [tuple(reversed(combo)) for combo in itertools.product(*reversed(free))]
    rows = [combos[i % len(combos)] for i in range(n)]
    return torch.tensor(rows, device=device)


def per_class_grid(info: dict, condition: Tensor | None, per_class: int | None, n: int, device) -> Tensor:
    """Conditions of K = per_class draws for each label class in turn (all n draws when per_class is None), the
    other columns cycling as condition_grid's; a model without a label condition is a one-line error."""
    if "label" not in (info.get("condition_on") or []):
        raise PluginError(f"--per-class/--format folder: this speech model is not conditioned on a "
                          f"{info.get('label_name', 'label')} (data.condition_on has no label); "
                          "use -n for the number of samples")
    column = info["condition_on"].index("label")
    given = condition.reshape(-1).clone() if condition is not None else torch.full((len(info["condition_on"]),), -1)
    if given[column] >= 0:
        classes = [int(given[column])]
    else:
        classes = list(range(len(info["labels"])))
    if per_class is None:  # -n draws, cycling through the classes
        return condition_grid(info, given, n, device)
    rows = []
    for label in classes:
        given[column] = label
        rows.append(condition_grid(info, given, per_class, device))
    return torch.cat(rows)


def condition_suffix(info: dict, conditions: Tensor | None, i: int) -> str:
    """`_digit-3_speaker-theo` for row i (empty for an unconditional model)."""
    if conditions is None:
        return ""
    return "".join(f"_{cond['name']}-{cond['classes'][int(v)]}"
                   for cond, v in zip(info["conditions"], conditions[i].tolist(), strict=True))
