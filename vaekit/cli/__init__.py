"""The command line (`vaekit ...`, `python -m vaekit ...`): the top of the engine; it may import every layer.

vaekit.cli.commands parses the verbs and runs them through training, evaluation and the plugins.
"""

from .commands import at_least, main

__all__ = ["main", "at_least"]
