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

Trainer is the loop; each concern around it is a module of its own: run_folder (the folder, its lock, recipe.yaml
and metrics.jsonl), checkpointing, best_weights (keep_best, patience), divergence (the NaN guard), stop_signals,
training_schedule (length, LR, KL weight), training_clock (max_minutes, trainer.clock), training_data (order and
loader) and training_evaluation (validation, samples, the latent sampler).
Over 400 lines: what stays here is the loop itself (set-up, resume, the step, the run's end), in one place.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from ..config.reading import RecipeError
from ..config.recipe import Recipe
from ..core.batch import to_device
from ..evaluation.evaluate import autocast
from ..io.messages import one_line
from ..io.safe_writes import WriteError
from ..plugin import PluginError, get_plugin, report_skipped
from ..runs import build_model, build_recipe_data
from .aggressive import AggressiveInference, random_indices
from .best_weights import BestWeights
from .checkpointing import Checkpointer
from .divergence import DivergenceGuard
from .run_folder import RunFolder
from .stop_signals import Interrupted, StopRequests, keep_swallowed_stops, raise_swallowed_stop, stops_blocked
from .training_clock import TrainingClock
from .training_data import SkippingSampler, check_evaluation_splits, training_loader
from .training_errors import TrainingError
from .training_evaluation import TrainingEvaluation, seed_everything
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
from .warm_start import WarmStartError, warm_start

# What the CLI, the benchmarks and the tests import from vaekit.training.trainer, wherever it is defined.
__all__ = ["SkippingSampler", "Trainer", "TrainingError", "lr_factor", "make_objective", "resolve_device",
           "seed_everything", "train", "warmup_length"]


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name}: CUDA is not available on this machine")
    return device


class Trainer:
    """Trains a recipe into a run folder: recipe.yaml, metrics.jsonl, samples/, checkpoints/."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, resume: bool = False):
        self.recipe, self.run_dir, self.resume = recipe, Path(run_dir), resume
        self.cfg = recipe.trainer
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = resolve_device(self.cfg.device)
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.saved_step = -1
        self.last_val: dict | None = None  # the last validation summary (rank 0)
        self.folder = RunFolder(self.run_dir, resume, self.is_main, self.world, self.distributed)
        self.best = BestWeights(self.folder, self.cfg, self.distributed)  # trainer.keep_best and trainer.patience
        self.guard = DivergenceGuard(self.folder, self.cfg.lr, self.distributed)  # NaN, inf, exploding weights
        self.stops = StopRequests(self.folder.last_checkpoint, self.is_main)  # SIGINT, SIGTERM, SIGHUP
        self.clock = TrainingClock(self.cfg, self.distributed)  # trainer.max_minutes, trainer.checkpoint_minutes
        self.started = False  # the first step began: from then on a failure leaves the run folder for --resume
        self.log_sums: torch.Tensor | None = None  # loss, rec, kl summed since the last train record
        self.log_count = 0  # steps in log_sums; both are checkpointed so that a resumed run logs the same records

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
        try:
            self.model = build_model(self.plugin, recipe.model, self.data.info, assets, recipe.latent,
                                     self.data.train).to(self.device)
        except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as exc:  # the plugin's own code
            if isinstance(exc, (RecipeError, PluginError)):
                raise
            raise TrainingError(self._model_error(exc)) from None
        if cfg.init_from and not self.resume:  # a resumed run has its own weights; the source may be gone
            self._warm_start(assets)
        self.objective = make_objective(recipe, self.total_steps, len(self.data.train))
        self.lr_warmup = warmup_length(cfg.warmup_steps, cfg.warmup_fraction, self.total_steps, "trainer.warmup")
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, fused=self.device.type in ("cpu", "cuda"))  # one fused kernel: ~5% faster small-model steps
        self.scheduler = lr_scheduler(self.optimizer, cfg, self.lr_warmup, self.total_steps, self._position)
        self.aggressive = None
        if cfg.aggressive_inference:
            if self.distributed:
                raise TrainingError("trainer.aggressive_inference: runs in one process only (its inner encoder "
                                    "loop is not synchronised across processes); train without torchrun")
            if recipe.latent.posterior != "diagonal":  # evaluate() measures I(x; z) for a Gaussian q(z|x) only
                raise TrainingError(f"trainer.aggressive_inference: its I(x; z) check needs a Gaussian posterior; "
                                    f"latent.posterior is {recipe.latent.posterior!r} (use diagonal)")
            every, fraction = cfg.aggressive_check_every or self.steps_per_epoch, None
            if not cfg.aggressive_check_every:
                fraction = 1 / 20  # an epoch may outlast a short or time-capped run: also every 20th of it
            self.aggressive = AggressiveInference(self.model, cfg.aggressive_max_steps, every, fraction)
        # Ranks share the weights (DDP broadcasts rank 0's) but draw their own noise (z samples, dropout).
        seed_everything(recipe.seed + 1000 * self.rank)
        self.net = self.model
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids,
                                               find_unused_parameters=cfg.find_unused_parameters)
        self.evaluation = TrainingEvaluation(recipe, self.plugin, self.data, self.model, self.folder, self.device,
                                             self.distributed)
        self.checkpointer = Checkpointer(self.folder, cfg.keep_last, self.rank, self.world, self.distributed,
                                         self.model, self.optimizer, self.scheduler, self.objective, self.aggressive)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0

    def _model_error(self, exc: BaseException) -> str:
        """The line for a model the plugin could not build: the error, and the model keys that look wrong."""
        model = self.recipe.model
        values = dataclasses.asdict(model) if dataclasses.is_dataclass(model) else dict(model)
        odd = [f"model.{key}={value}" for key, value in values.items()
               if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 2**31]
        hint = (f"check {', '.join(odd)}" if odd else "check the recipe's model section")
        return (f"the {self.recipe.plugin} plugin cannot build the model ({type(exc).__name__}: {one_line(exc)}); "
                f"{hint}")

    def _position(self, step: int) -> float:
        """Where the run is, in steps, for the schedules: the step, or further when time will end it first."""
        return self.clock.position(step, self.total_steps)

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def _warm_start(self, assets: Path) -> None:
        """trainer.init_from: another run's weights (trainer.init_parts of them, if given) before the optimizer's."""
        try:
            record = warm_start(self.model, self.cfg.init_from, self.cfg.init_parts, assets)
        except WarmStartError as exc:
            raise TrainingError(str(exc)) from None
        if self.is_main:
            self.folder.log_plain({"step": 0, "split": "init", **record})
            print(f"vaekit: started from {record['init_from']} ({', '.join(record['init_parts'])}: "
                  f"{record['tensors']} tensors)", file=sys.stderr)

    # -- the run folder ----------------------------------------------------------------------------
    @property
    def lock(self) -> int | None:
        """RUN/.lock's descriptor while this process holds it (rank 0)."""
        return self.folder.lock

    def _open_run_dir(self) -> None:
        """Create and lock the run folder (RunFolder.open)."""
        self.folder.open()

    def _write_recipe(self) -> None:
        """RUN/recipe.yaml: the recipe as resolved, with what the data decided (RunFolder.write_recipe)."""
        self.folder.write_recipe(self.recipe)

    def _save(self) -> None:
        self.folder.check()
        self.guard.check_finite_weights(self.model, self.step)
        self.checkpointer.save({"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                                "train_seconds": self.clock.elapsed, "log_sums": self.log_sums,
                                "log_count": self.log_count})
        self.saved_step = self.step
        self.clock.saved()
        self._barrier()

    def _restore(self) -> None:
        """Continue the newest intact checkpoint; unreadable newer ones are set aside (corrupt-step-N), with a note."""
        state = self.checkpointer.restore()
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.clock.seconds_before = float(state.get("train_seconds", 0.0))
        sums = state.get("log_sums")  # what the next train record averages over, from before the checkpoint
        self.log_sums = sums.to(self.device) if isinstance(sums, torch.Tensor) else None
        self.log_count = int(state.get("log_count", 0)) if self.log_sums is not None else 0
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

    def _fit_sampler(self) -> None:
        """latent.sampler=gmm or pixelcnn: fitted after the final evaluation (TrainingEvaluation.fit_sampler)."""
        self.evaluation.fit_sampler(self.step)

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
        self._write_recipe()
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
        started = self.clock.start()  # also the first log window's start (steps_per_s)
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
                    terms = self._train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    values = torch.stack([terms.loss.detach(), -terms.log_likelihood.detach().mean(),
                                          terms.kl.detach().mean()]).float()
                    self.log_sums = values if self.log_sums is None else self.log_sums + values
                    self.log_count += 1
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        loss, rec, kl = (self.log_sums / self.log_count).tolist()
                        elapsed = time.perf_counter() - started
                        self.folder.log({"step": self.step, "split": "train", "epoch": self.epoch, "loss": loss,
                                         "rec": rec, "kl": kl, "beta": terms.beta,
                                         "lr": self.scheduler.get_last_lr()[0],
                                         "steps_per_s": self.log_count / max(elapsed, 1e-9), **terms.extra})
                        bar.set_postfix(loss=f"{loss:.3f}", rec=f"{rec:.3f}", kl=f"{kl:.3f}",
                                        beta=f"{terms.beta:.3g}", refresh=False)
                        self.log_sums, self.log_count, started = None, 0, time.perf_counter()
                        bar.total = self.clock.projected_last_step(self.step, first_step, self.total_steps)
                    bar.update(1)
                    out_of_time, checkpoint_due, stop = self.clock.tick(self.stops.signal)
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
        self._fit_sampler()
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

    def _train_step(self, batch):
        batch = to_device(batch, self.device)
        if self.aggressive is None:
            return self._update(batch)
        record = self.aggressive.check(self.step, self._position(self.step) / self.total_steps,
                                       self._validation_mutual_information)
        if record and self.is_main:
            self.folder.log_plain({"step": self.step, "split": "aggressive", **record})
            if not record["aggressive"]:
                print(f"vaekit: aggressive inference ended at step {self.step}: I(x; z) {record['mi']:.3f} nats, "
                      f"not above {record['previous_mi']:.3f} at the check before", file=sys.stderr)
        if not self.aggressive.on:
            return self._update(batch)
        encoder_steps = self._train_encoder(batch)
        terms = self._update(batch, frozen=self.aggressive.encoder_params)
        terms.extra["encoder_steps"] = encoder_steps
        return terms

    def _train_encoder(self, batch) -> int:
        """Aggressive inference's inner loop: encoder-only updates on this batch, then on random ones. The
        objective's state (a KL controller's) is put back afterwards: it follows the training steps only."""
        saved = getattr(self.objective, "state_dict", dict)()
        stride = self.cfg.aggressive_max_steps + 1

        def random_batch(i: int) -> dict:
            seed = (self.recipe.seed * 1_000_003 + self.step) * stride + i  # the same draws after --resume
            indices = random_indices(len(self.data.train), self.cfg.batch_size, seed)
            items = [self.data.train[j] for j in indices.tolist()]
            return to_device((self.data.collate or default_collate)(items), self.device)

        steps = self.aggressive.train_encoder(
            lambda b: self._update(b, frozen=self.aggressive.decoder_params, schedule=False).loss.item(),
            batch, random_batch)
        if saved:
            self.objective.load_state_dict(saved)
        return steps

    def _validation_mutual_information(self) -> float:
        """I(x; z) (nats) on the first trainer.eval_batches validation batches (training ones without a split)."""
        return self.evaluation.summary(self.data.val if self.data.val is not None else self.data.train,
                                       self.step)["mi"]

    def _update(self, batch, frozen=(), schedule: bool = True):
        """One optimizer update on batch, leaving the frozen parameters as they are; schedule: a training step,
        which also moves the learning-rate schedule on (aggressive inference's inner updates do not)."""
        try:
            with autocast(self.device, self.cfg.precision):
                terms = self.net(batch["x"], batch.get("c"), objective=self.objective, step=self._position(self.step))
            self.optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
        except RuntimeError as exc:  # oneDNN's CPU LSTM, for one, refuses bf16 with a message naming neither
            if self.cfg.precision != "bf16" or self.device.type != "cpu" or isinstance(exc, TrainingError):
                raise
            raise TrainingError(f"trainer.precision=bf16 failed on the CPU at step {self.step + 1} "
                                f"({str(exc).split('. ')[0].strip()}); set trainer.precision=fp32, or train "
                                f"on a GPU") from None
        for p in frozen:  # AdamW skips a parameter without a gradient: no step, no decay, its moments kept
            p.grad = None
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, self.cfg.grad_clip)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        self.guard.check(self.model, terms, grad_norm, self.step)  # before the update reaches the weights
        self.optimizer.step()
        if schedule:
            self.scheduler.step()
        return terms


def train(recipe: Recipe, run_dir: str | Path, resume: bool = False) -> dict:
    """Train recipe into run_dir (continuing its last checkpoint when resume); final validation summary."""
    trainer = Trainer(recipe, run_dir, resume)
    try:
        return trainer.fit()
    finally:
        trainer.folder.close()  # the run folder is free for the next train
        if trainer.distributed and dist.is_initialized():
            dist.destroy_process_group()
