"""The engine's verbs beyond train, plugins and the run verbs: each lives in its own module of vaekit.cli and is
imported only when called, so an optional dependency (gradio for `demo`) costs nothing to the other verbs.

A verb is (module, function, synopsis, summary); the function takes the arguments after the verb and returns the exit
status, raising one of the CLI's expected errors for a one-line message.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple


class EngineVerb(NamedTuple):
    module: str  # under vaekit.cli
    function: str
    synopsis: str  # `vaekit --help` lists the synopsis, then the summary
    summary: str


ENGINE_VERBS: dict[str, EngineVerb] = {
    "classify": EngineVerb("classify", "main", "classify RUN INPUT...", "the class an M2 run gives each input"),
    "demo": EngineVerb("demo", "main", "demo RUN [--port N] [--share no]", "a browser page over a run (Gradio)"),
}


def engine_verb(verb: str) -> Callable[[list[str]], int] | None:
    """The function that runs `vaekit VERB ...`, or None when the engine has no such verb."""
    entry = ENGINE_VERBS.get(verb)
    if entry is None:
        return None
    return getattr(importlib.import_module(f"vaekit.cli.{entry.module}"), entry.function)
