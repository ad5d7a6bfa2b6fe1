"""The divergence guard: a NaN/inf loss or gradient, or an update that blows the weights up, stops the run before
the update reaches the weights, sets aside the checkpoint that produced it (diverged-step-N), and says how to
recover; a checkpoint never holds non-finite weights."""

from __future__ import annotations

import math
import os

import torch
import torch.distributed as dist

from ..io.checkpoint import checkpoint_step, checkpoints
from .run_folder import RunFolder
from .training_errors import TrainingError

# An update that multiplies the weights' norm by more than this has diverged (healthy steps change it by <1%).
MAX_WEIGHT_GROWTH = 100.0


class DivergenceGuard:
    """Checks each update before it is applied; `weight_norm` is the weights' norm before the last update."""

    def __init__(self, folder: RunFolder, lr: float, distributed: bool = False):
        self.folder, self.lr, self.distributed = folder, lr, distributed
        self.weight_norm: torch.Tensor | None = None

    def check(self, model, terms, grad_norm: torch.Tensor, step: int) -> None:
        """Raise a TrainingError if step's loss or gradient norm is not finite, or if the previous update grew the
        weights' norm more than MAX_WEIGHT_GROWTH times; step is the number of steps done before this one.

        Checked before the update, so NaN or inf never reaches the weights (one sync per step). The weights' norm
        catches the other way to diverge: a finite update so large (lr=1e6) that every later step fails; the check
        runs here, on the previous update's result, which is what was just checkpointed.
        """
        weight_norm = torch.nn.utils.get_total_norm(list(model.parameters())).float()
        growth = weight_norm / self.weight_norm if self.weight_norm is not None else torch.ones_like(weight_norm)
        ok = (torch.isfinite(terms.loss.detach()) & torch.isfinite(grad_norm) & torch.isfinite(weight_norm)
              & ~(growth > MAX_WEIGHT_GROWTH)).float()
        if self.distributed:  # one process's NaN stops them all at the same step
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if not ok.item():
            self._diverged(terms, grad_norm, weight_norm, step)
        self.weight_norm = weight_norm

    def _diverged(self, terms, grad_norm, weight_norm, step: int) -> None:
        """Stop on a non-finite loss or gradient, or exploded weights, before the update; bad weights are set aside."""
        # The weights of the step just before gave this step's failure: resuming from them would fail again.
        latest = checkpoints(self.folder.path)
        if self.folder.is_main and latest and checkpoint_step(latest[-1]) == step and step > 0:
            os.replace(latest[-1], latest[-1].with_name(f"diverged-{latest[-1].name}"))
        if self.distributed:
            dist.barrier()
        loss = terms.loss.detach().float().item()
        if not math.isfinite(loss):
            what = f"the loss became {loss}"
        elif not math.isfinite(grad_norm.item()):
            what = f"the gradient norm became {grad_norm.item()}"
        else:
            growth = weight_norm.item() / self.weight_norm.item()
            what = f"the last update multiplied the weights' norm by {growth:.3g} (to {weight_norm.item():.3g})"
        raise TrainingError(f"step {step + 1}: {what} (rec {-terms.log_likelihood.detach().float().mean().item():.4g}, "
                            f"kl {terms.kl.detach().float().mean().item():.4g}); stopped before the update. "
                            f"{self.recovery_advice()}")

    def check_finite_weights(self, model, step: int) -> None:
        """Before a checkpoint: never let the "last good checkpoint" hold inf or NaN."""
        finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
        if not finite.item():
            raise TrainingError(f"step {step}: the weights became non-finite (the update overflowed); this "
                                f"step was not saved. {self.recovery_advice()}")

    def recovery_advice(self) -> str:
        """What to do after a divergence: resume the last good checkpoint with a lower lr, or start again."""
        lr = self.lr
        last = checkpoints(self.folder.path)
        if not last:
            return (f"No checkpoint precedes it: train again with a lower trainer.lr (now {lr:g}), trainer.grad_clip "
                    f"or trainer.precision=fp32 (the same --out is fine: it holds no checkpoint)")
        return (f"The last good checkpoint, {last[-1]}, is intact: lower trainer.lr (now {lr:g}), set "
                f"trainer.grad_clip or trainer.precision=fp32, then resume: {self.folder.resume_command()} "
                f"trainer.lr={lr / 10:g}")
