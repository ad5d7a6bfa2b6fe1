"""A training run's folder: created and locked (one trainer per folder), refused when it is not a run or holds a
planted link, removed again after a failed start, checked before each write, and its recipe and metrics log.

Only the main process (rank 0) touches the folder: on other ranks every method here does nothing. The lock is
vaekit.io.safe_writes.lock_folder, not the filelock package: filelock takes a .lock that is a hard link planted to
another file, and cannot name the process holding the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import threading
from pathlib import Path

import yaml

from ..config.reading import RecipeError, read_yaml
from ..io.checkpoint import checkpoints, remove_leftovers
from ..io.safe_writes import (
    WriteError,
    atomic_write_text,
    describe,
    lock_folder,
    open_append,
    refuse_hard_link,
    refuse_link,
    remove_entry,
)
from ..plugin import SKIPPED_FILES
from .training_errors import TrainingError

# What a resumed run may change: where it runs, how often it reports, and how long it goes on. Anything
# else (data, model, objective, seed) would silently make it a different run.
RESUMABLE_KEYS = {f"trainer.{key}" for key in (
    "epochs", "max_steps", "min_steps", "max_minutes", "clock", "patience", "device", "threads", "num_workers",
    "progress", "eval_every", "eval_batches", "checkpoint_every", "checkpoint_minutes", "keep_last", "log_every",
    "samples")} \
    | {"eval"}
# The knobs a user turns to recover from a diverged run (what the NaN message advises). A resumed run may
# change them; the change is recorded in metrics.jsonl ({"split": "resume", "changed": ...}).
RECOVERY_KEYS = {"trainer.lr", "trainer.grad_clip", "trainer.precision"}
# What the trainer writes at the top of a run folder: a symbolic link planted under one of these names is refused.
RUN_ENTRIES = (".lock", "recipe.yaml", "metrics.jsonl", "checkpoints", "samples", "samplers", "assets", "outputs",
               SKIPPED_FILES)


def changed_keys(saved, current, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, saved value, current value) wherever two resolved recipes (nested dicts) differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [change for name in dict.fromkeys([*saved, *current])
                for change in changed_keys(saved.get(name), current.get(name), f"{prefix}{name}.")]
    return [] if saved == current else [(prefix.rstrip("."), saved, current)]


class RunFolder:
    """RUN: its lock, what a failed start removes again, the resume command, recipe.yaml and metrics.jsonl."""

    def __init__(self, path: str | Path, resume: bool, is_main: bool, world: int = 1, distributed: bool = False):
        self.path, self.resume, self.is_main = Path(path), resume, is_main
        self.world, self.distributed = world, distributed
        self.lock: int | None = None  # RUN/.lock, held while training (rank 0)
        self.created: Path | None = None  # the run folder, if this process created it (else None)
        self.created_parents: list[Path] = []  # folders above it that this process created for --out's path
        self.entries_before: set[str] = set()  # what an existing run folder held when this process opened it
        self.recovery: dict = {}  # RECOVERY_KEYS this resume changes: key -> [old, new]
        self.writer = None  # the TensorBoard writer, once open (rank 0)

    # -- opening and undoing -----------------------------------------------------------------------
    def open(self) -> None:
        """Create and lock the run folder; refuse to start over a run, to resume one that is not there, to train into
        a folder of other files, or to write through a link planted in a run."""
        if not self.is_main:
            return
        run = self.path
        try:
            existed = run.is_dir()
            if self.resume and not existed:
                raise TrainingError(f"--resume: {run} does not exist")
            entries = sorted(os.listdir(run)) if existed else []
        except OSError as exc:  # a name too long, no permission
            raise TrainingError(f"--out {run}: {describe(exc)}") from None
        if entries and not self.resume and not (os.path.isfile(run / ".lock") or checkpoints(run)):
            shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
            raise TrainingError(f"--out {run}: not a vaekit run (no .lock) but a folder of other files ({shown}), "
                                f"whose recipe.yaml and metrics.jsonl a run would replace; give a new or empty folder")
        for name in RUN_ENTRIES:
            if os.path.islink(run / name):
                raise TrainingError(f"{run / name}: is a symbolic link; vaekit does not write through links in a run "
                                    f"folder (remove the link, or train into another --out)")
        missing = [folder for folder in (run, *run.parents) if not os.path.lexists(folder)]
        try:
            run.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"--out {run}: cannot create the run folder ({describe(exc)})") from None
        self.lock = lock_folder(run, TrainingError)  # first: one process per run folder
        # Only once the lock is ours: what a failed start removes again (undo_start).
        self.created, self.entries_before = (run if missing else None), set(entries)
        self.created_parents = missing[1:]
        if self.resume:
            if not checkpoints(run):
                raise TrainingError(f"--resume: {run} has no checkpoints to resume from")
            for partial in remove_leftovers(run):  # left by a kill mid-write or mid-prune
                print(f"vaekit: note: removed {partial}, left by an interrupted checkpoint write", file=sys.stderr)
        elif checkpoints(run):
            raise TrainingError(f"{run} already holds a run; pass --resume to continue it or --out to "
                                f"start a new one elsewhere")
        elif (run / "metrics.jsonl").exists():  # a run that never checkpointed: start its log afresh
            atomic_write_text(run / "metrics.jsonl", "")

    def undo_start(self) -> None:
        """A start that failed before its first step leaves nothing: a run folder it created is removed again, and
        in one that existed only what it added goes (its RUN/.lock included)."""
        if not self.is_main or self.lock is None:
            return
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close()
        run = self.path
        if self.created is not None:
            shutil.rmtree(run, ignore_errors=True)  # never follows a link inside it
            for parent in self.created_parents:  # folders --out's path needed, if still empty
                with contextlib.suppress(OSError):
                    parent.rmdir()
            return
        with contextlib.suppress(OSError):
            for name in set(os.listdir(run)) - self.entries_before:
                remove_entry(run / name)

    def close(self) -> None:
        """Release RUN/.lock: the run folder is free for the next train."""
        if self.lock is not None:
            os.close(self.lock)

    # -- before each write -------------------------------------------------------------------------
    def check(self) -> None:
        """Before a write: the run folder is still the one this process locked (not removed or replaced meanwhile);
        writing on would create a new folder of that name holding no checkpoint."""
        if not self.is_main or self.lock is None:
            return
        try:
            same = os.path.samestat(os.stat(self.path / ".lock", follow_symlinks=False), os.fstat(self.lock))
        except OSError:
            same = False
        if same:
            return
        if checkpoints(self.path):
            raise TrainingError(f"{self.path / '.lock'} was removed or replaced while training, so another "
                                f"process could enter the run; stopped. The last intact checkpoint is "
                                f"{self.last_checkpoint()}; resume: {self.resume_command()}")
        raise TrainingError(f"{self.path} was removed while training, and its checkpoints with it: nothing is "
                            f"left to resume; train again")

    def last_checkpoint(self) -> str:
        found = checkpoints(self.path)
        return str(found[-1]) if found else "none (no checkpoint was written yet)"

    def resume_command(self) -> str:
        """The exact command that continues this run: its own resolved recipe, its folder, --resume."""
        launcher = f"torchrun --nproc-per-node {self.world} -m vaekit" if self.distributed else "vaekit"
        return f"{launcher} train {shlex.quote(str(self.path / 'recipe.yaml'))} " \
               f"--out {shlex.quote(str(self.path))} --resume"

    # -- the recipe --------------------------------------------------------------------------------
    def write_recipe(self, recipe) -> None:
        """RUN/recipe.yaml: the recipe as resolved, with what the data decided; --resume must match it."""
        if not self.is_main:
            return
        resolved = yaml.safe_dump(recipe.to_dict(), sort_keys=False)
        self.check()  # set-up takes a while: the folder may be gone, and the write below would recreate it
        if self.resume:
            self.check_same_recipe(yaml.safe_load(resolved))  # read back: the same types as the saved file
        atomic_write_text(self.path / "recipe.yaml", f"# resolved from {recipe.source}\n" + resolved)

    def check_same_recipe(self, current: dict) -> None:
        """--resume continues the run's own recipe; changes beyond RESUMABLE_KEYS are an error naming them."""
        saved_file = self.path / "recipe.yaml"
        if not saved_file.is_file():
            return
        try:
            saved = read_yaml(saved_file)  # alias-safe: a planted YAML bomb is refused, not expanded
        except RecipeError as exc:
            raise TrainingError(str(exc)) from None
        if not isinstance(saved, dict):
            raise TrainingError(f"{saved_file}: expected the run's resolved recipe (a mapping)")
        changes = changed_keys(saved, current)
        changed = [(key, old, new) for key, old, new in changes if key not in RESUMABLE_KEYS | RECOVERY_KEYS
                   and key.split(".")[0] not in RESUMABLE_KEYS]
        if changed:
            described = ", ".join(f"{key} ({old!r} -> {new!r})" for key, old, new in changed)
            raise TrainingError(f"--resume: the recipe differs from {saved_file} in {described}; resume with the "
                                f"run's own recipe, or train into a new --out")
        self.recovery = {key: [old, new] for key, old, new in changes if key in RECOVERY_KEYS}

    # -- metrics.jsonl and TensorBoard -------------------------------------------------------------
    def open_writer(self) -> None:
        """The TensorBoard writer, whose event file lies beside metrics.jsonl."""
        if not self.is_main:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.check()
        try:
            self.writer = SummaryWriter(str(self.path))
        except OSError as exc:  # a full disk while it opens its event file
            raise WriteError(self.path / "events.out.tfevents.*", describe(exc)) from None

    def abandon_writer(self) -> None:
        """After a failure: close TensorBoard's writer with its own write errors unsaid, so that its thread has ended
        before quiet_tensorboard_thread puts the usual thread hook back (the failure itself is already told)."""
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close()

    def close_writer(self) -> None:
        if self.writer is not None:
            with self.tensorboard_errors():
                self.writer.close()

    def log(self, record: dict) -> None:
        """One record to metrics.jsonl, and its numbers to TensorBoard."""
        if not self.is_main:
            return
        self.check()
        with open_append(self.path / "metrics.jsonl") as f:
            f.write(json.dumps(record) + "\n")
        with self.tensorboard_errors():
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['split']}/{key}", value, record["step"])

    def log_plain(self, record: dict) -> None:
        """One record to metrics.jsonl only (before TensorBoard's writer is open)."""
        with open_append(self.path / "metrics.jsonl") as f:
            f.write(json.dumps(record) + "\n")

    @staticmethod
    @contextlib.contextmanager
    def quiet_tensorboard_thread():
        """While inside, TensorBoard's writer thread prints no traceback for a failed write: the next log() or
        close_writer() raises it as a WriteError (tensorboard_errors)."""
        thread_hook = threading.excepthook

        def quiet(args):
            if not (isinstance(args.exc_value, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
                thread_hook(args)

        threading.excepthook = quiet
        try:
            yield
        finally:
            threading.excepthook = thread_hook

    def write_failed(self, exc: WriteError) -> TrainingError:
        """The line for a failed write (a full disk, a file-size limit, a planted link): what is still safe."""
        self.check()  # the folder removed while training: nothing to resume
        if not checkpoints(self.path):
            return TrainingError(f"{exc}; no checkpoint was written, so there is nothing to resume: fix this, "
                                 f"then train again")
        return TrainingError(f"{exc}; the last intact checkpoint is {self.last_checkpoint()}; fix this, then "
                             f"resume: {self.resume_command()}")

    @contextlib.contextmanager
    def tensorboard_errors(self):
        """TensorBoard writes its event file in a thread of its own and raises a failed write later: a WriteError."""
        try:
            yield
        except OSError as exc:
            name = getattr(getattr(getattr(self.writer, "file_writer", None), "event_writer", None), "_file_name",
                           None)
            raise WriteError(name or self.path / "events.out.tfevents.*", describe(exc)) from None

    def cut_metrics(self, step: int) -> dict | None:
        """Forget what the interrupted run logged after step; a torn last line is dropped with a note. Returns the
        validation record of step itself, if the log holds one."""
        log = self.path / "metrics.jsonl"
        refuse_link(log)  # before reading: a link's target is not this run's log
        if not log.exists():
            return None
        with open(log, "rb") as f:
            refuse_hard_link(f.fileno(), log)  # nor is a hard link's: its other name lies outside the run
            lines = f.read().decode(errors="replace").splitlines()
        kept, last_val = [], None
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                record_step = record["step"]
            except (json.JSONDecodeError, KeyError, TypeError):
                if number == len(lines):
                    print(f"vaekit: note: {log}:{number}: dropped a torn last line (the run was killed while "
                          f"writing it)", file=sys.stderr)
                    continue
                raise TrainingError(f"{log}:{number}: not a JSON record with a step; fix or remove that line, "
                                    f"then --resume again") from None
            if isinstance(record_step, (int, float)) and record_step <= step:
                kept.append(line)
                if record_step == step and isinstance(record, dict) and record.get("split") == "val":
                    last_val = record  # a finished run resumed again reports it, not a second record
        atomic_write_text(log, "".join(line + "\n" for line in kept))
        return last_val
