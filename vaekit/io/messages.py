"""One-line messages: every error vaekit prints is one line, naming what was wrong and where.

    raise RecipeError(f"{where}: expected a number, got {quote(value)}{did_you_mean(value, choices)}")

The bottom of the engine: stdlib only, so any module may import it.
"""

from __future__ import annotations

import difflib
from typing import Any

MAX_QUOTE = 200  # characters of a value an error message quotes


def one_line(message: Any, limit: int = MAX_QUOTE) -> str:
    """A message (or an exception's) on one line, cut to limit characters: a library's may span many."""
    text = " ".join(str(message).split()) or (type(message).__name__ if isinstance(message, BaseException) else "")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def quote(value: Any) -> str:
    """repr(value) (an exception's message) on one line, cut to MAX_QUOTE characters, so an error stays one line."""
    return one_line(value if isinstance(value, BaseException) else repr(value))




def did_you_mean(name: Any, choices, otherwise: str = "") -> str:
    """"; did you mean 'x'?" for the choice nearest to a mistyped name, or `otherwise` when none is near."""
    near = difflib.get_close_matches(str(name), [str(choice) for choice in choices], n=1)
    return f"; did you mean {near[0]!r}?" if near else otherwise
