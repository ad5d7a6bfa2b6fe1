"""The error that ends training in one line: what went wrong, and what is left intact."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, say); the last good checkpoint is left intact."""
