"""A plugin's options as forms: its own verbs (`vaekit inpaint`, `vaekit superres`, ...) and the options it adds to
the engine's verbs (`vaekit reconstruct --source`, `vaekit sample --seconds`), their argparse actions read as fields.

A positional argument is an input of the plugin's input kind (an image upload for image, say), and so is an option
whose metavar names a file (`--mask MASK.png`: with an image input, one that starting with MASK is painted over the
verb's image, see painted_over); an option with choices is a dropdown, a flag a checkbox, a number a
number box, anything else a text box. The engine's own
options (run, device, seed, the output folder) are filled in by the demo, and hidden options are left out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..plugin import Plugin

FILLED_BY_THE_DEMO = ("help", "run", "device", "seed", "out_dir")
FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".wav", ".flac", ".txt", ".csv")  # a metavar ending so names an upload


@dataclass
class Field:
    """One form field of a plugin verb."""

    dest: str
    label: str  # the option as the command line spells it (--iterations), or the positional's name
    help: str
    widget: str  # input, choice, flag (ticked: the option given), number or text
    default: Any = None
    choices: list | None = None
    many: bool = False  # a positional that takes several inputs: the page gives one
    painted: bool = False  # an image option whose metavar starts with MASK: strokes painted over the verb's image


def verb_parser(plugin: Plugin, verb: str) -> argparse.ArgumentParser:
    """A plugin verb's parser as `vaekit VERB RUN` builds it (the engine's options, then the plugin's); for an
    engine verb (sample, reconstruct, interpolate, traverse), the options the plugin adds to it alone."""
    parser = argparse.ArgumentParser(prog=f"vaekit {verb}", add_help=False)
    if verb not in plugin.commands():
        plugin.add_arguments(verb, parser)
        return parser
    parser.add_argument("run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    plugin.commands()[verb][0](parser)
    return parser


def _is_number(action: argparse.Action) -> bool:
    name = getattr(action.type, "__name__", "")
    return action.type in (int, float) or name.startswith(("integer", "number"))  # vaekit's at_least types


def verb_fields(plugin: Plugin, verb: str) -> list[Field]:
    """The form of a plugin verb, in the order its options were added."""
    fields = []
    actions = verb_parser(plugin, verb)._actions
    for action in actions:
        if action.dest in FILLED_BY_THE_DEMO or action.help == argparse.SUPPRESS:
            continue
        shared = [a for a in actions if a.dest == action.dest and isinstance(a, argparse._StoreConstAction)]
        if len(shared) > 1:  # flags that set one value (text's --text / --file): one choice among their values
            if action is shared[0]:
                fields.append(Field(action.dest, " / ".join(a.option_strings[-1] for a in shared),
                                    "; ".join(a.help or "" for a in shared), "choice", action.default,
                                    [a.const for a in shared]))
            continue
        label = action.option_strings[-1] if action.option_strings else action.dest
        text = (action.help or "").replace("%(default)s", str(action.default))
        if not action.option_strings or str(action.metavar or "").lower().endswith(FILE_SUFFIXES):
            widget = "input"
        elif action.choices:
            widget = "choice"
        elif isinstance(action, argparse._StoreConstAction):  # store_true, store_false, store_const
            widget = "flag"
        elif _is_number(action):
            widget = "number"
        else:
            widget = "text"
        painted = widget == "input" and str(action.metavar or "").upper().startswith("MASK")
        fields.append(Field(action.dest, label, text, widget, action.default,
                            list(action.choices) if action.choices else None, action.nargs in ("+", "*"), painted))
    return fields


def painted_over(fields: list[Field]) -> tuple[Field, Field] | None:
    """(the image, the mask) when a verb takes a painted mask over its first positional input, else None: the page
    shows one editor for both, its picture the image and its strokes the mask."""
    mask = next((f for f in fields if f.painted), None)
    image = next((f for f in fields if f.widget == "input" and not f.label.startswith("-")), None)
    return (image, mask) if mask is not None and image is not None else None


def verb_arguments(plugin: Plugin, verb: str, run, values: dict, out_dir: Path,
                   read_input: Callable[[Any, str], str]) -> argparse.Namespace:
    """The namespace `vaekit VERB RUN ...` would give the plugin's verb, from a form's values (dest -> value)."""
    parser = verb_parser(plugin, verb)
    args = argparse.Namespace(**{a.dest: a.default for a in parser._actions if a.dest != "help"})
    args.run, args.out_dir = str(run), Path(out_dir)
    for dest, value in form_values(plugin, verb, values, read_input).items():
        setattr(args, dest, value)
    return args


def form_values(plugin: Plugin, verb: str, values: dict, read_input: Callable[[Any, str], str]) -> dict:
    """A form's values (dest -> value) as the verb's options: the keywords the CLI would pass for them.

    Inputs go through read_input (value, name) -> path; numbers and text through the option's own type, so a
    bad value is the same one-line ValueError the command line gives; an empty box is the option's default.
    """
    parser = verb_parser(plugin, verb)
    options = {}
    for field in verb_fields(plugin, verb):
        value = values.get(field.dest)
        action = next(a for a in parser._actions if a.dest == field.dest)
        if value is None and field.widget not in ("input", "flag"):
            value = field.default  # a field the form left out
        if field.widget == "input":
            given = value is not None and not (isinstance(value, str) and not value.strip())
            if not given and action.option_strings:
                options[field.dest] = field.default  # an optional upload left empty
                continue
            path = read_input(value, field.dest)
            value = [path] if field.many else path
        elif field.widget in ("number", "text"):
            text = "" if value is None else str(value).strip()
            if field.widget == "number" and text.endswith(".0") and getattr(action.type, "__name__", "") != "float":
                text = text[:-2]  # a number box gives 50.0 for an integer option
            if not text:
                value = field.default
            elif action.type is not None:
                try:
                    value = action.type(text)
                except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                    raise ValueError(f"{field.label}: {exc}") from None
            else:
                value = text
        elif field.widget == "flag":
            value = action.const if value else field.default
        options[field.dest] = value
    return options
