"""Ctrl-C while the `vaekit` command is still importing torch ends it quietly, not with a traceback.

`vaekit ...` and `python -m vaekit ...` import the whole engine before main() runs; imported first
by vaekit/__init__.py, this makes SIGINT during that time print one line and exit 130. main()
puts Python's own handler back. Importing vaekit from other code changes nothing.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def _quit(signum, frame):
    print("vaekit: interrupted", file=sys.stderr)
    raise SystemExit(130)


def started_as_command() -> bool:
    """True while `vaekit` (the console script) or `python -m vaekit` is starting."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or Path(first).name == "vaekit"


if started_as_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _quit)
