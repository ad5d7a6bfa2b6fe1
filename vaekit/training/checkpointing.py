"""A training run's checkpoints: RUN/checkpoints/step-N written (with every process's RNG) and the oldest pruned, and
the newest intact one restored on --resume, with unreadable newer ones set aside as corrupt-step-N."""

from __future__ import annotations

import os
import sys

import torch.distributed as dist

from ..io.checkpoint import (
    CONFIG,
    WEIGHTS,
    CheckpointError,
    checkpoints,
    load_training_state,
    load_weights,
    remove_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ..io.messages import one_line
from .run_folder import RunFolder
from .training_errors import TrainingError


class Checkpointer:
    """Saves and restores what continues a run exactly: the weights, the optimizer, the LR schedule, the objective's
    and aggressive inference's state, every process's RNG, and the position the trainer passes in (step, epoch,
    ...). save and restore are collective under torchrun: every process calls them; rank 0 writes the files."""

    def __init__(self, folder: RunFolder, keep_last: int, rank: int, world: int, distributed: bool, model, optimizer,
                 scheduler, objective, aggressive=None):
        self.folder, self.keep_last = folder, keep_last
        self.rank, self.world, self.distributed = rank, world, distributed
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.objective, self.aggressive = objective, aggressive
        self.corrupt: list[tuple] = []  # (folder, error) of the checkpoints restore() could not read

    def save(self, position: dict) -> None:
        """RUN/checkpoints/step-{position['step']}, then the oldest pruned to trainer.keep_last."""
        rng_per_rank = [rng_state()]
        if self.distributed:  # every process's generators, so each resumes its own random stream
            rng_per_rank = [None] * self.world
            dist.all_gather_object(rng_per_rank, rng_state())
        if not self.folder.is_main:
            return
        state = {"step": position["step"], "epoch": position["epoch"], "batch_in_epoch": position["batch_in_epoch"],
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": rng_per_rank, "train_seconds": position["train_seconds"],
                 "objective": getattr(self.objective, "state_dict", dict)(),
                 "aggressive": self.aggressive.state_dict() if self.aggressive else None,
                 **{key: value for key, value in position.items()
                    if key not in ("step", "epoch", "batch_in_epoch", "train_seconds")}}
        run = self.folder.path
        save_checkpoint(self.model, state, run / "checkpoints" / f"step-{position['step']}")
        for old in checkpoints(run)[:-max(1, self.keep_last)]:
            remove_checkpoint(old)

    def restore(self) -> dict:
        """Load the newest intact checkpoint into the model, optimizer, scheduler, objective and this process's RNG;
        returns its training state (the position save() was given, among the rest)."""
        run, bad = self.folder.path, []
        for folder in reversed(checkpoints(run)):
            try:
                state = load_training_state(folder)
                load_weights(self.model, folder / WEIGHTS, folder / CONFIG)
                break
            except CheckpointError as exc:
                bad.append((folder, exc))
        else:
            raise TrainingError(f"--resume: no intact checkpoint in {run / 'checkpoints'} "
                                f"(the newest: {bad[0][1]})")
        if len(state["rng"]) != self.world:  # each process's data shard and noise stream depend on the count
            raise TrainingError(f"--resume: {folder} was written by {len(state['rng'])} process(es), this run has "
                                f"{self.world}; resume with torchrun --nproc-per-node {len(state['rng'])}")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"][self.rank])
            if state.get("objective"):  # a KL controller's integral and β
                self.objective.load_state_dict(state["objective"])
            if self.aggressive and state.get("aggressive"):  # whether the phase is over, the last I(x; z)
                self.aggressive.load_state_dict(state["aggressive"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise TrainingError(f"--resume: {folder / 'state.json'}: the optimizer, scheduler or RNG state does not "
                                f"fit this model ({one_line(exc)})") from None
        self.corrupt, self.restored = bad, folder
        return state

    def set_aside_corrupt(self) -> None:
        """The unreadable checkpoints newer than the one restored become corrupt-step-N, each with a note (rank 0)."""
        if not self.folder.is_main:
            return
        for folder_bad, exc in self.corrupt:
            aside = folder_bad.with_name(f"corrupt-{folder_bad.name}")
            os.replace(folder_bad, aside)
            print(f"vaekit: note: {exc}; set {folder_bad.name} aside as {aside.name} and resumed from "
                  f"{self.restored}", file=sys.stderr)
        self.corrupt = []
