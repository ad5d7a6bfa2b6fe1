"""trainer.keep_best and trainer.patience: the weights with the best validation ELBO kept in
RUN/checkpoints/best-step-N, the run stopped once that many evaluations bring no better one, and the model given
those weights at the end."""

from __future__ import annotations

import math
import sys

import torch
import torch.distributed as dist

from ..io.checkpoint import (
    BEST,
    BEST_RECORD,
    CONFIG,
    WEIGHTS,
    CheckpointError,
    best_checkpoint,
    checkpoints,
    load_weights,
    read_json,
    remove_checkpoint,
    save_pretrained,
)
from ..io.safe_writes import WriteError, describe
from .run_folder import RunFolder
from .training_errors import TrainingError


class BestWeights:
    """The best validation ELBO so far ({"step", "elbo", ...} in `record`, rank 0) and its weights on disk."""

    def __init__(self, folder: RunFolder, cfg, distributed: bool = False):
        self.folder, self.cfg, self.distributed = folder, cfg, distributed
        self.record: dict | None = None  # {"step", "elbo"} of RUN/checkpoints/best-step-N

    def check(self, plugin: str, has_validation: bool) -> None:
        """Before the first step: patience needs the best weights kept, and keeping them needs a validation split."""
        cfg = self.cfg
        if cfg.patience and not cfg.keep_best:
            raise TrainingError(f"trainer.patience={cfg.patience} stops the run past its best validation ELBO: it "
                                f"needs trainer.keep_best=true to keep those weights")
        if cfg.keep_best and not has_validation:
            raise TrainingError(f"trainer.keep_best: the {plugin} data has no validation split to choose the "
                                f"best weights by; set trainer.keep_best=false")

    def restore(self) -> None:
        """--resume: the record of the kept best weights, even if they came after the checkpoint resumed (they are
        the best weights this run has seen)."""
        best = best_checkpoint(self.folder.path) if self.cfg.keep_best else None
        if best is None:
            return
        self.record = read_json(best / BEST_RECORD)
        if not all(isinstance(self.record.get(key), (int, float)) for key in ("step", "elbo")):
            raise CheckpointError(f"{best / BEST_RECORD}: expected numbers under 'step' and 'elbo'")

    def consider(self, model, step: int, elbo: float) -> None:
        """The weights go to RUN/checkpoints/best-step-N when their validation ELBO (nats per example) beats the best
        so far; the previous best is removed once the new one is whole (rank 0)."""
        if not self.cfg.keep_best:
            return
        if not math.isfinite(elbo) or (self.record is not None and elbo <= self.record["elbo"]):
            return
        run = self.folder.path
        folder = run / "checkpoints" / f"{BEST}{step}"
        record = {"step": step, "elbo": elbo, "eval_batches": self.cfg.eval_batches}
        try:
            save_pretrained(model, folder, records={BEST_RECORD: record})
        except OSError as exc:
            raise WriteError(folder, f"cannot write the best weights ({describe(exc)})") from None
        for old in checkpoints(run, BEST):
            if old != folder:
                remove_checkpoint(old)
        self.record = record
        self.folder.log({"step": step, "split": "best", "elbo": elbo, "folder": str(folder)})

    def out_of_patience(self, step: int) -> bool:
        """trainer.patience: the last that many evaluations brought no better validation ELBO (rank 0 decides; a
        collective under torchrun)."""
        if not self.cfg.patience:
            return False
        since = step - self.record["step"] if self.folder.is_main and self.record else 0
        flag = torch.tensor([float(since >= self.cfg.patience * self.cfg.eval_every)], dtype=torch.float64)
        if self.distributed:
            dist.broadcast(flag, src=0)
        return bool(flag.item())

    def patience_note(self, step: int, total_steps: int) -> str:
        n = self.cfg.patience
        return (f"trainer.patience={n}: no better validation ELBO in {n} evaluation{'s' if n != 1 else ''} since "
                f"step {self.record['step']} ({self.record['elbo']:.4g} nats); stopped at step {step} of "
                f"{total_steps}")

    def use(self, model, step: int) -> None:
        """After the final evaluation: the model takes the kept best weights and the run says where they are."""
        if not (self.cfg.keep_best and self.folder.is_main and self.record):
            return
        folder = self.folder.path / "checkpoints" / f"{BEST}{self.record['step']}"
        if self.record["step"] != step:
            load_weights(model, folder / WEIGHTS, folder / CONFIG)
        print(f"vaekit: note: trainer.keep_best: the best validation ELBO, {self.record['elbo']:.4g} nats, came at "
              f"step {self.record['step']} of {step}; {folder} holds it and eval, sample, reconstruct and encode "
              f"of {self.folder.path} use it", file=sys.stderr)
