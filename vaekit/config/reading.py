"""Reading a recipe's text: bounded YAML, dotted overrides, ${ENV} expansion, and values typed against dataclasses.

    data = apply_overrides(read_yaml("recipes/image/mnist.yaml"), ["trainer.epochs=20"], "mnist.yaml")
    cfg = build_dataclass(TrainerConfig, expand_env(data)["trainer"], "trainer")

Every error is a RecipeError that names the key path and what was expected, with the nearest valid key for a
typo. Nothing here knows a plugin: vaekit.config.recipe types a whole recipe with these.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from ..io.messages import did_you_mean, quote

DEFAULT_DATA_DIR = "~/.cache/vaekit/data"
MAX_YAML_NODES = 100_000  # values a recipe may hold once its aliases are expanded (real recipes hold ~100)


class RecipeError(ValueError):
    """A recipe or override that cannot be used; the message names file, key and what was expected."""


# -- reading -------------------------------------------------------------------------------------

class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents whose aliases expand past MAX_YAML_NODES values (a "billion laughs")."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        return super().compose_node(parent, index)

    def compose_document(self):
        node = super().compose_document()
        if self.aliases:  # only aliases can make a short document huge
            _count_nodes(node, {}, set())
        return node


def _count_nodes(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Values in node once aliases are expanded; each distinct node is counted once, so this is fast."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise RecipeError("a YAML alias refers to itself (a recursive anchor)")
    open_nodes.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_count_nodes(child, sizes, open_nodes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_count_nodes(k, sizes, open_nodes) + _count_nodes(v, sizes, open_nodes) for k, v in node.value)
    open_nodes.discard(key)
    if size > MAX_YAML_NODES:
        raise RecipeError(f"YAML aliases expand to more than {MAX_YAML_NODES:,} values (an alias bomb?); "
                          "write the values out or use fewer nested anchors")
    sizes[key] = size
    return size


def load_yaml_text(text: str, where: str) -> Any:
    """yaml.safe_load with a bound on alias expansion; errors are RecipeErrors that name where (and the line)."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{where}:{line} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise RecipeError(f"{where}: YAML nested too deeply") from None


def read_yaml(path: str | Path) -> dict:
    """Parse a YAML mapping from a file, with errors that name the file and line."""
    path = Path(path)
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder; expected a recipe YAML file (e.g. recipes/image/shapes.yaml)")
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not a UTF-8 text file (byte {exc.start}); expected a recipe YAML file") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot be read ({exc.strerror})") from None
    data = load_yaml_text(text, str(path))
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping with plugin, data, model, ...")
    return data


def apply_overrides(data: dict, overrides: list[str], source: str) -> dict:
    """Set `a.b.c=value` overrides (value parsed as YAML) on the raw recipe dict."""
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {quote(item)}: expected KEY=VALUE, e.g. trainer.epochs=20")
        key, raw = item.split("=", 1)
        try:
            value = load_yaml_text(raw, f"override {key}") if raw != "" else None
        except RecipeError as exc:
            if "YAML aliases" in str(exc) or "refers to itself" in str(exc):
                raise
            value = raw  # not YAML: the text itself
        parts = key.strip().split(".")
        if not all(parts):
            raise RecipeError(f"override {quote(item)}: expected KEY=VALUE with a dotted key, e.g. trainer.epochs=20")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"override {key}: {'.'.join(parts[:depth + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def expand_env(value: Any) -> Any:
    """Expand ${VAR} and ~ in every string; VAEKIT_DATA defaults to ~/.cache/vaekit/data."""
    if isinstance(value, str):
        if "${" in value:  # most values hold no variable: skip the per-variable pass (it dominates big recipes)
            env = dict(os.environ)
            env.setdefault("VAEKIT_DATA", DEFAULT_DATA_DIR)
            value = _ENV_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)
        return os.path.expanduser(value) if value.startswith("~") else value
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


# -- typing --------------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check value against annotation tp and convert (int -> float, list -> tuple); raise naming where."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, where)
            except RecipeError:
                continue
        raise RecipeError(f"{where}: expected {_type_name(tp)}, got {quote(value)}")
    if origin is Literal:
        if value not in args:
            hint = did_you_mean(value, args)
            raise RecipeError(f"{where}: expected {_type_name(tp)}, got {quote(value)}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a section (mapping), got {quote(value)}")
        return build_dataclass(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {quote(value)}")
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {quote(value)}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise RecipeError(f"{where}: expected {_type_name(tp)}, got {quote(value)}")


# Lower bounds of a section's numbers, (bound, strict), and upper bounds: a value outside is an error naming the
# key. The engine's sections register theirs (vaekit.config.recipe, beside the dataclasses).
BOUNDS: dict[type, dict[str, tuple[float, bool]]] = {}
UPPER_BOUNDS: dict[type, dict[str, float]] = {}
# Names that mean the same in every plugin's sections: counts are never negative, a latent has >= 1 dimension.
_COUNT_NAME = re.compile(r"^(num|n|max)_|_(size|dim|steps|every|samples|examples|length|iters|fft|mels|layers)$"
                         r"|^(hidden|width|depth|channels|heads|layers|units)$")
MAX_INT = 2**63 - 1  # torch and NumPy hold integers in 64 bits: a larger one would overflow deep inside them
MAX_SEED = 2**32 - 1  # seeds are mixed with steps and split names into 64-bit generator seeds


def _check_bounds(cls: type, key: str, value: Any, where: str) -> None:
    """Raise RecipeError when a number lies outside what the key can mean (e.g. trainer.log_every=0)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bound = BOUNDS.get(cls, {}).get(key)
    if bound is None and isinstance(value, int):
        if key == "latent_dim":
            bound = (1, False)
        elif key != "seed" and _COUNT_NAME.search(key):
            bound = (0, False)
    if key == "seed":
        bound = (0, False)
    if bound is not None:
        low, strict = bound
        if value < low or (strict and value == low):
            kind = "an integer" if isinstance(value, int) else "a number"
            raise RecipeError(f"{where}: expected {kind} {'>' if strict else '>='} {low:g}, got {quote(value)}")
    high = UPPER_BOUNDS.get(cls, {}).get(key)
    if high is not None and value > high:
        raise RecipeError(f"{where}: expected a number <= {high:g}, got {quote(value)}")
    if isinstance(value, int) and not -MAX_INT <= value <= (MAX_SEED if key == "seed" else MAX_INT):
        high, text = (MAX_SEED, "2**32 - 1") if key == "seed" else (MAX_INT, "2**63 - 1")
        bound = f"<= {high:,} ({text})" if value > 0 else f">= {-MAX_INT:,}"
        raise RecipeError(f"{where}: expected an integer {bound}, got {quote(value)}")


def build_dataclass(cls: type, values: dict, where: str) -> Any:
    """Instantiate dataclass cls from a mapping; unknown keys name the nearest valid one."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            hint = did_you_mean(key, fields, otherwise=f"; valid keys: {', '.join(fields)}")
            raise RecipeError(f"{quote(path)[1:-1]}: unknown key{hint}")
        value = _convert(value, hints[key], path)
        _check_bounds(cls, key, value, path)
        if fields[key].metadata.get("must_exist") and value is not None and not Path(value).exists():
            raise RecipeError(f"{path}: {quote(value)[1:-1]} does not exist")
        kwargs[key] = value
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecipeError(f"{where or 'recipe'}: missing required key(s) {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass's own __post_init__ check
        raise RecipeError(f"{where}: {exc}") from None


