"""The command line (`vaekit ...`, `python -m vaekit ...`): the top of the engine; it may import every layer.

vaekit.cli.parsers builds the verbs' parsers (one-line errors, the engine's options, the plugin's);
vaekit.cli.commands runs the verbs through training, evaluation and the plugins.
"""

from .commands import main
from .parsers import at_least

__all__ = ["main", "at_least"]
