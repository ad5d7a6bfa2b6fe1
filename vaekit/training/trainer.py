"""The training loop: seeded, AdamW with warm-up + cosine decay, clipping, bf16, eval, atomic checkpoints.

    vaekit train recipes/image/shapes.yaml trainer.max_steps=200         # one process
    torchrun --nproc-per-node 2 -m vaekit train recipes/image/shapes.yaml # DDP, rank 0 writes files

Resuming (`--resume`) restores weights, optimizer, LR schedule, every RNG and the position in the
epoch's data order, so a resumed run ends with the same weights as an uninterrupted one. It may run
longer, elsewhere or report differently (RESUMABLE_KEYS), and may change the knobs that recover a diverged
run (RECOVERY_KEYS: lr, grad_clip, precision; recorded in metrics.jsonl); any other recipe change, or
another number of processes, is an error rather than a silently different run.

Faults: a NaN/inf loss or gradient, or an update that blows the weights up, stops the run before the
update (the checkpoint that produced it is set aside as diverged-step-N); SIGINT/SIGTERM/SIGHUP finish
the step, checkpoint it and end with one line holding the exact resume command (a second signal aborts);
RUN/.lock keeps a second trainer out; a failed write names the file and the last intact checkpoint.
Warm-ups may be fractions of the run: of total_steps, or of trainer.max_minutes when time ends it first.

Trainer is the loop: set-up, resume, the steps, the run's end. Each concern around it is a module of its own
(vaekit/training/__init__.py lists them): training_setup builds the parts, training_step makes one step,
training_log writes the train records.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..config.recipe import Recipe
from ..config.semi_supervised import reads_codes
from ..io.safe_writes import WriteError
from ..plugin import get_plugin, report_skipped
from ..runs import build_recipe_data
from .best_weights import BestWeights
from .checkpointing import Checkpointer
from .divergence import DivergenceGuard
from .run_folder import RunFolder
from .stop_signals import Interrupted, StopRequests, keep_swallowed_stops, raise_swallowed_stop, stops_blocked
from .training_clock import TrainingClock
from .training_data import SkippingSampler, check_evaluation_splits, training_loader
from .training_errors import TrainingError
from .training_evaluation import TrainingEvaluation, seed_everything
from .training_log import TrainLog
from .training_schedule import (
    lr_factor,
    lr_scheduler,
    make_objective,
    min_steps_note,
    run_length,
    set_base_lr,
    warmup_length,
    warmup_note,
)
from .training_setup import (
    build_run_model,
    join_processes,
    make_aggressive,
    make_optimizer,
    resolve_device,
    start_from,
    wrap_for_processes,
)
from .training_step import AggressiveStep, TrainingStep

# What the CLI, the benchmarks and the tests import from vaekit.training.trainer, wherever it is defined.
__all__ = ["SkippingSampler", "Trainer", "TrainingError", "lr_factor", "make_objective", "resolve_device",
           "seed_everything", "train", "warmup_length"]


class Trainer:
    """Trains a recipe into a run folder: recipe.yaml, metrics.jsonl, samples/, checkpoints/."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, resume: bool = False):
        self.recipe, self.run_dir, self.resume = recipe, Path(run_dir), resume
        self.cfg = recipe.trainer
        self.device = resolve_device(self.cfg.device)
        self.distributed, self.rank, self.world = join_processes(self.device)
        self.is_main = self.rank == 0
        self.saved_step = -1
        self.last_val: dict | None = None  # the last validation summary (rank 0)
        self.folder = RunFolder(self.run_dir, resume, self.is_main, self.world, self.distributed)
        self.best = BestWeights(self.folder, self.cfg, self.distributed)  # trainer.keep_best and trainer.patience
        self.guard = DivergenceGuard(self.folder, self.cfg.lr, self.distributed)  # NaN, inf, exploding weights
        self.stops = StopRequests(self.folder.last_checkpoint, self.is_main)  # SIGINT, SIGTERM, SIGHUP
        self.clock = TrainingClock(self.cfg, self.distributed)  # trainer.max_minutes, trainer.checkpoint_minutes
        self.started = False  # the first step began: from then on a failure leaves the run folder for --resume

    # -- set-up ------------------------------------------------------------------------------------
    def _setup(self) -> None:
        recipe, cfg = self.recipe, self.cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        seed_everything(recipe.seed)
        self.plugin = get_plugin(recipe.plugin)
        assets = self.run_dir / "assets"
        if self.is_main:
            assets.mkdir(parents=True, exist_ok=True)
        self._barrier()
        self.data = build_recipe_data(self.plugin, recipe, assets)
        if self.is_main:  # one line about data files left out, and their list in the run folder
            report_skipped(self.data, self.run_dir)
        check_evaluation_splits(recipe, self.data)
        self.best.check(recipe.plugin, self.data.val is not None)
        self.sampler, self.loader = training_loader(self.data, recipe, self.world, self.rank, self.device)
        self.steps_per_epoch = len(self.loader)
        total = max(cfg.epochs * self.steps_per_epoch, cfg.min_steps)
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.model = build_run_model(self.plugin, recipe, self.data, assets, self.device)
        if cfg.init_from and not self.resume:  # a resumed run has its own weights; the source may be gone
            start_from(self.model, cfg, assets, self.folder, self.is_main)
        self.objective = make_objective(recipe, self.total_steps, len(self.data.train))
        self.lr_warmup = warmup_length(cfg.warmup_steps, cfg.warmup_fraction, self.total_steps, "trainer.warmup")
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.scheduler = lr_scheduler(self.optimizer, cfg, self.lr_warmup, self.total_steps, self._position)
        self.aggressive = make_aggressive(recipe, self.model, self.steps_per_epoch, self.distributed)
        # Ranks share the weights (DDP broadcasts rank 0's) but draw their own noise (z samples, dropout).
        seed_everything(recipe.seed + 1000 * self.rank)
        self.net = wrap_for_processes(self.model, self.device, cfg, self.distributed)
        self.evaluation = TrainingEvaluation(recipe, self.plugin, self.data, self.model, self.folder, self.device,
                                             self.distributed)
        self.checkpointer = Checkpointer(self.folder, cfg.keep_last, self.rank, self.world, self.distributed,
                                         self.model, self.optimizer, self.scheduler, self.objective, self.aggressive)
        parts = (cfg, self.net, self.model, self.objective, self.optimizer, self.scheduler, self.guard, self.device,
                 self._position)
        self.training_step = TrainingStep(*parts) if self.aggressive is None else AggressiveStep(
            *parts, aggressive=self.aggressive, data=self.data, seed=recipe.seed,
            mutual_information=self._validation_mutual_information, folder=self.folder, is_main=self.is_main,
            total_steps=self.total_steps)
        self.log = TrainLog(self.folder, cfg.log_every, self.scheduler)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0

    def _position(self, step: int) -> float:
        """Where the run is, in steps, for the schedules: the step, or further when time will end it first."""
        return self.clock.position(step, self.total_steps)

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    # -- checkpoints -------------------------------------------------------------------------------
    def _save(self) -> None:
        self.folder.check()
        self.guard.check_finite_weights(self.model, self.step)
        self.checkpointer.save({"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                                "train_seconds": self.clock.elapsed, **self.log.state_dict()})
        self.saved_step = self.step
        self.clock.saved()
        self._barrier()

    def _restore(self) -> None:
        """Continue the newest intact checkpoint; unreadable newer ones are set aside (corrupt-step-N), with a note."""
        state = self.checkpointer.restore()
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.clock.seconds_before = float(state.get("train_seconds", 0.0))
        self.log.load_state_dict(state, self.device)
        self.saved_step = self.step
        self.best.restore()
        set_base_lr(self.optimizer, self.scheduler, self.cfg.lr)  # trainer.lr may change on resume
        self._barrier()
        if self.is_main:
            self.checkpointer.set_aside_corrupt()
            self.last_val = self.folder.cut_metrics(self.step) or self.last_val
            if self.folder.recovery:
                self.folder.log_plain({"step": self.step, "split": "resume", "changed": self.folder.recovery})

    # -- evaluation --------------------------------------------------------------------------------
    def _evaluate(self) -> dict | None:
        result = None
        if self.is_main and self.data.val is not None:
            summary = self.evaluation.summary(self.data.val, self.step)
            result = {"step": self.step, "split": "val", **{k: v for k, v in summary.items() if k != "kl_per_dim"}}
            self.folder.log(result)
            self.last_val = result
            self.best.consider(self.model, self.step, result["elbo"])
            self.evaluation.write_samples(self.step)
        self._barrier()
        return result

    def _validation_mutual_information(self, step: int) -> float:
        """I(x; z) (nats) on the first trainer.eval_batches validation batches (training ones without a split)."""
        return self.evaluation.summary(self.data.val if self.data.val is not None else self.data.train, step)["mi"]

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train to trainer.max_steps / epochs; returns the final validation summary."""
        self.stops.catch()  # finish the step, checkpoint, stop (_stop); a second signal aborts at once
        try:
            with self.folder.quiet_tensorboard_thread():  # until the failure below is told, cleanup included
                try:
                    with keep_swallowed_stops():
                        raise_swallowed_stop()  # one that came while the command set up the run
                        summary = self._fit()
                        raise_swallowed_stop()  # one that came during the final evaluation
                        return summary
                except WriteError as exc:  # a full disk, a file-size limit, a planted link: say what is still safe
                    error = self.folder.write_failed(exc)
                    self.folder.abandon_writer()
                    self._undo_start()
                    raise error from None
                except BaseException:
                    self.folder.abandon_writer()
                    self._undo_start()
                    raise
        finally:
            self.stops.release()

    def _undo_start(self) -> None:
        """A start that failed before its first step leaves nothing in the run folder (RunFolder.undo_start)."""
        if not self.started:
            self.folder.undo_start()

    def _fit(self) -> dict:
        self.folder.open()  # first: the lock, and no set-up writes into another run's folder
        self._barrier()
        self._setup()  # the plugin may fill in recipe defaults from the data (image size, say): recorded next
        self.folder.write_recipe(self.recipe)
        self._barrier()
        note = min_steps_note(self.cfg, len(self.data.train), self.steps_per_epoch, self.total_steps)
        if note and self.is_main and not self.resume:
            print(f"vaekit: note: {note}", file=sys.stderr)
        if self.resume:
            self._restore()
            if self.step >= self.total_steps and self.is_main:
                length = run_length(self.cfg, self.steps_per_epoch)
                print(f"vaekit: note: {self.run_dir} is complete: it is at step {self.step} and {length}; "
                      f"nothing to train (raise trainer.epochs or trainer.max_steps to go on)", file=sys.stderr)
        stopped_early = self.resume and self.best.out_of_patience(self.step)  # every rank asks: rank 0 broadcasts
        if stopped_early and self.step < self.total_steps and self.is_main:
            note = self.best.patience_note(self.step, self.total_steps)
            print(f"vaekit: note: {self.run_dir} is complete: {note}; nothing to train (raise "
                  f"trainer.patience to go on)", file=sys.stderr)
        self.folder.open_writer()
        cfg = self.cfg
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.recipe.name or "train",
                   disable=not cfg.progress or not self.is_main, mininterval=1.0, dynamic_ncols=True)
        self.model.train()
        self.log.start(self.clock.start())  # the first log window starts with the clock
        done = self.step >= self.total_steps or stopped_early
        # The loop ended right after an evaluation (patience), or a finished run resumed again has its final one.
        evaluated_last_step = done and self.last_val is not None and self.last_val.get("step") == self.step
        first_step = self.step
        raise_swallowed_stop()  # one that came while setting up: stop before training, not after a step
        self.started = self.stops.in_loop = True  # from here a stop signal ends the run at the next step, checkpointed
        try:
            while not done:
                self.sampler.set_epoch(self.epoch)
                self.sampler.skip = self.batch_in_epoch * cfg.batch_size
                with stops_blocked():  # workers start with stop signals held back, then ignore them (ignore_stops)
                    batches = iter(self.loader)
                for batch in batches:
                    terms = self.training_step(batch, self.step)
                    self.step += 1
                    self.batch_in_epoch += 1
                    amounts = {} if reads_codes(self.data.info) else self.plugin.batch_amounts(batch, self.data.info)
                    self.log.add(terms, self.training_step.grad_norm, amounts)
                    out_of_time, checkpoint_due, stop = self.clock.tick(self.stops.signal)
                    if self.log.due(self.step, self.total_steps) or out_of_time:  # the run's last step too
                        loss, rec, kl = self.log.write(self.step, self.epoch, terms, self.clock.elapsed)
                        bar.set_postfix(loss=f"{loss:.3f}", rec=f"{rec:.3f}", kl=f"{kl:.3f}",
                                        beta=f"{terms.beta:.3g}", refresh=False)
                        bar.total = self.clock.projected_last_step(self.step, first_step, self.total_steps)
                    bar.update(1)
                    done = self.step >= self.total_steps or out_of_time
                    if out_of_time:  # the bar ends full where the time budget ended the run
                        bar.total = self.step
                    if stop:
                        self._stop(stop, bar)
                    if self.step % cfg.eval_every == 0 and not done:
                        self._evaluate()
                        done = evaluated_last_step = self.best.out_of_patience(self.step)
                        if done and self.is_main:
                            bar.total = self.step  # the bar ends full where patience ended the run
                            bar.close()  # the note below starts on its own line
                            note = self.best.patience_note(self.step, self.total_steps)
                            self.folder.log({"step": self.step, "split": "note", "note": note})
                            print(f"vaekit: note: {note}", file=sys.stderr)
                    if self.step % cfg.checkpoint_every == 0 or done or checkpoint_due:
                        self._save()
                    if done:
                        break
                else:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        finally:
            self.stops.in_loop = False
            bar.close()
        final = ((self.last_val or {}) if evaluated_last_step else self._evaluate()) or {}  # every rank alike
        self.best.use(self.model, self.step)
        if self.best.record:
            final = {**final, "best_step": self.best.record["step"], "best_elbo": self.best.record["elbo"]}
        self.evaluation.fit_sampler(self.step)  # latent.sampler=gmm or pixelcnn: fitted after the final evaluation
        note = warmup_note(self._position(self.step), self.lr_warmup, self.objective)
        if note and self.is_main:
            if self.step > first_step or not self.resume:  # a finished run resumed again logged it the first time
                self.folder.log({"step": self.step, "split": "note", "note": note})
            final = {**final, "note": note}
        self.folder.close_writer()
        return final

    def _stop(self, signum: int, bar) -> None:
        """End the run after a stop signal: a checkpoint of this step, then one line saying how to go on."""
        if self.saved_step != self.step:
            self._save()
        bar.close()  # the line below starts on its own line, not after the progress bar
        folder = self.run_dir / "checkpoints" / f"step-{self.step}"
        raise Interrupted(f"vaekit: stopped by {signal.Signals(signum).name} after step {self.step}; checkpoint "
                          f"{folder}; continue with: {self.folder.resume_command()}" if self.is_main else "", signum)


def train(recipe: Recipe, run_dir: str | Path, resume: bool = False) -> dict:
    """Train recipe into run_dir (continuing its last checkpoint when resume); final validation summary."""
    trainer = Trainer(recipe, run_dir, resume)
    try:
        return trainer.fit()
    finally:
        trainer.folder.close()  # the run folder is free for the next train
        if trainer.distributed and dist.is_initialized():
            dist.destroy_process_group()
