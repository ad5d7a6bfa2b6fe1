"""Writing into run folders safely: never through a planted symbolic link, never a half-written file.

    with atomic_open(run / "eval-test.json", "w") as f:   # temporary file beside it, then os.replace
        json.dump(summary, f)
    with open_append(run / "metrics.jsonl") as f:          # O_NOFOLLOW: a link there is refused
        f.write(line)

A run folder may be shared or come from someone else, so any of its files may be a symbolic link
to a file elsewhere. Every write the engine and the plugins make into a run goes through here: a
final path component that is a link is refused with one line, and whole-file writes land by
rename, so a crash or a full disk leaves the old file (or none), never a torn one. A failed write
(ENOSPC, EFBIG past a file-size limit, EACCES) becomes a WriteError naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path


class WriteError(RuntimeError):
    """A file could not be written (full disk, a planted symbolic link, no permission); names the path."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)


def describe(exc: OSError) -> str:
    """A short reason for a failed write, with the advice that fits the errno."""
    reasons = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EFBIG: "file too large (a file-size limit, ulimit -f, was reached)",
               errno.ELOOP: "is a symbolic link; vaekit does not write through links in a run folder"}
    return reasons.get(exc.errno, exc.strerror or str(exc))


RUN_MARKERS = ("recipe.yaml", "config.json")  # a run folder, or a checkpoint / pretrained folder


def _marked(folder: Path) -> bool:
    """Whether folder holds a run marker (it may be a decoy planted behind a link)."""
    return any(os.path.isfile(folder / marker) for marker in RUN_MARKERS)


def is_run_folder(folder: Path) -> bool:
    """Whether folder is one vaekit made: a run (.lock and recipe.yaml) or a pretrained folder (weights + config)."""
    folder = Path(folder)
    return (os.path.isfile(folder / ".lock") and os.path.isfile(folder / "recipe.yaml")) or \
        (os.path.isfile(folder / "config.json") and os.path.isfile(folder / "model.safetensors"))


def refuse_link(path: Path) -> None:
    """WriteError if path, or a folder between it and the run folder it lies in, is a symbolic link.

    The walk goes past a marked folder that lies behind a link (RUN/outputs -> /elsewhere whose sample/ holds a
    recipe.yaml, even a .lock): any vaekit run or pretrained folder above the link makes it a link inside a run.
    """
    path = Path(path)
    if os.path.islink(path):
        raise WriteError(path, "is a symbolic link; vaekit does not write through links in a run folder "
                               "(remove the link or choose another output)")
    link, marked_below = None, False  # the first folder above path that is a link; a marker seen below it
    for parent in path.absolute().parents:  # all the way up: a decoy behind the link may look like a whole run
        if os.path.islink(parent):
            link = link or parent
        elif link is None:
            marked_below = marked_below or _marked(parent)
        elif is_run_folder(parent) or (not marked_below and _marked(parent)):
            raise WriteError(link, "is a symbolic link inside a run folder; vaekit does not write through it "
                                   "(remove the link or choose another output)")
    # Not inside a run folder: the user's own output folder may well be reached through links.


def refuse_hard_link(fd: int, path: Path) -> None:
    """WriteError if the open file fd (at path) is not a regular file with one name: a planted hard link's other
    name lies outside the run, and writing would change that file too."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        what = f"is a hard link ({info.st_nlink} names)" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise WriteError(path, f"{what}; vaekit does not write through links in a run folder (remove it)")


def remove_entry(path: Path) -> None:
    """Delete a file, link or folder tree at path; a link is removed itself, never what it points to."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # rmtree unlinks links inside the tree, never follows them
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs):
    """Open a temporary file beside path for writing ('w' or 'wb'); on success it replaces path by rename.

    Missing parent folders are created first, so a verb may write into an out_dir that does not exist yet.
    """
    path = Path(path)
    refuse_link(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name[:80]}-", dir=path.parent)
    except OSError as exc:
        raise WriteError(path, describe(exc)) from None
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run's files are as readable as any other output
        os.replace(tmp, path)  # replaces a link planted after refuse_link rather than following it
    except OSError as exc:
        raise WriteError(path, describe(exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write text to path atomically, never through a link."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes to path atomically, never through a link."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


@contextlib.contextmanager
def open_append(path: str | Path):
    """Open a text file for appending, refusing a symbolic link (O_NOFOLLOW); write errors name the path."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        f = os.fdopen(os.open(path, flags, 0o644), "a", encoding="utf-8")
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            refuse_link(path)
        raise WriteError(path, describe(exc)) from None
    try:
        with f:
            refuse_hard_link(f.fileno(), path)
            yield f
    except OSError as exc:
        raise WriteError(path, describe(exc)) from None


def lock_folder(folder: Path, error=RuntimeError):
    """Hold an exclusive lock on FOLDER/.lock (our pid inside) until the returned fd is closed; None if unsupported.

    flock: the lock goes with the process, however it ends (SIGKILL too), so a stale lock never blocks a resume.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    path = Path(folder) / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise error(f"{path}: cannot open the run's lock file ({describe(exc)})") from None
    try:
        refuse_hard_link(fd, path)
    except WriteError as exc:
        os.close(fd)
        raise error(str(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise error(f"{folder} is in use by another vaekit train (pid {holder}, holding {path}); wait for it to "
                    f"finish, or train into another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
