"""Ctrl-C (or SIGTERM, SIGHUP) while the `vaekit` command is still importing torch: one line, no traceback.

`vaekit ...` and `python -m vaekit ...` import the whole engine before main() runs; imported first
by vaekit/__init__.py, this makes SIGINT during that time print one line and exit 130. main()
puts Python's own SIGINT handler back, and for SIGTERM and SIGHUP one that unwinds first (raise_stopped:
one line after the progress bars close, exit 128 + the signal); train's trainer checkpoints first.
Importing vaekit from other code changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from .training.stop_signals import Interrupted


def quit_quietly(signum, frame):
    """One line, then exit at once: nothing is written yet, and an exception raised while numpy or torch load
    their C extensions can be caught by them (the command then ran on) or leave them half loaded (an
    ImportError, even an abort); all three happened."""
    name = signal.Signals(signum).name
    print("vaekit: interrupted" if signum == signal.SIGINT else f"vaekit: stopped by {name}", file=sys.stderr,
          flush=True)
    os._exit(128 + signum)


def raise_stopped(signum, frame):
    """The handler main() installs: unwind (closing bars and files), then main() prints the line."""
    raise Interrupted(f"vaekit: stopped by {signal.Signals(signum).name}", signum)


def started_as_command() -> bool:
    """True while `vaekit` (the console script) or `python -m vaekit` is starting."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or Path(first).name == "vaekit"


if started_as_command():
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, quit_quietly)
    for _name in ("SIGTERM", "SIGHUP"):  # a verb that is not training: one line, not a silent death
        if hasattr(signal, _name) and signal.getsignal(getattr(signal, _name)) is signal.SIG_DFL:
            signal.signal(getattr(signal, _name), quit_quietly)
