"""Stop signals (SIGINT, SIGTERM, SIGHUP): the exception they raise, and keeping one Python would swallow."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP stopped a verb or training; str() is the line to print, exit_code 128 + the signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


# Stops (Ctrl-C's KeyboardInterrupt too) raised where Python cannot let an exception out (a __del__, a
# weakref callback such as the import lock's), oldest first, until raise_swallowed_stop() raises one.
_swallowed: list[KeyboardInterrupt] = []


@contextlib.contextmanager
def keep_swallowed_stops():
    """While inside, a stop raised in a __del__ or weakref callback is kept, not printed as a traceback.

    A signal handler runs wherever the main thread happens to be; if that is inside a finaliser, Python
    prints "Exception ignored in ..." with a traceback and carries on as if no signal had come.
    """
    previous = sys.unraisablehook

    def keep(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _swallowed.append(unraisable.exc_value)
        else:
            previous(unraisable)

    keep.keeps_stops = True
    sys.unraisablehook = keep
    try:
        yield
    finally:
        sys.unraisablehook = previous
        if not getattr(previous, "keeps_stops", False):  # the outermost: nothing left for a later run to raise
            _swallowed.clear()


def raise_swallowed_stop() -> None:
    """Raise the first stop a finaliser swallowed since the last call, if any."""
    if _swallowed:
        stop = _swallowed[0]
        _swallowed.clear()
        raise stop


@contextlib.contextmanager
def stops_blocked():
    """Hold stop signals back (pending, not lost) while inside; processes forked inside start with them blocked."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_stops(worker_id: int = 0) -> None:
    """A DataLoader worker's init: the main process handles stop signals (it finishes the step, checkpoints and ends
    its workers), so a worker ignores them; sent to the process group, they would otherwise kill it mid-batch."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # forked inside stops_blocked(): what came meanwhile is dropped, ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class StopRequests:
    """Training's stop signals: the first is noted in `signal` and the loop finishes its step, checkpoints and ends;
    one that comes outside the steps (setting up, the final evaluation), or a second one, ends the run at once.

    `last_checkpoint` gives the checkpoint the abort message names; `in_loop` says the steps are running.
    """

    def __init__(self, last_checkpoint, is_main: bool = True):
        self.last_checkpoint, self.is_main = last_checkpoint, is_main
        self.signal: int | None = None  # a stop signal received; the loop checkpoints and ends
        self.in_loop = False
        self.previous: dict = {}  # the handlers catch() replaced, which release() puts back

    def catch(self) -> None:
        """Handle STOP_SIGNALS here (in the main thread only: elsewhere Python cannot install handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handler)

    def release(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal is not None:  # the second: stop now; checkpoints are written atomically
            raise Interrupted(f"vaekit: aborted by a second {name}; the last checkpoint, "
                              f"{self.last_checkpoint()}, is intact" if self.is_main else "", signum)
        self.signal = signum  # the loop stops on this even where the raise below cannot get out
        if not self.in_loop:  # setting up or in the final evaluation: no step to finish, nothing new to save
            raise Interrupted(f"vaekit: stopped by {name} outside the training steps; the last checkpoint, "
                              f"{self.last_checkpoint()}, is intact" if self.is_main else "", signum)
