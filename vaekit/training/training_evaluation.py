"""What a run measures and writes while it trains: the validation summary (its noise seeded by the step), samples
from the model, and at the end a latent sampler (latent.sampler) fitted to the training codes."""

from __future__ import annotations

import contextlib
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..evaluation.evaluate import evaluate
from ..evaluation.samplers import fitted_prior
from ..io.checkpoint import resolve_model_dir
from ..plugin import PluginError
from .run_folder import RunFolder


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainingEvaluation:
    """Evaluation and samples of `model` during a run; each draws its randomness from the step, then puts training's
    back, so how often a run evaluates never changes what it trains (nor what --resume continues)."""

    def __init__(self, recipe, plugin, data, model, folder: RunFolder, device: torch.device,
                 distributed: bool = False):
        self.recipe, self.cfg, self.plugin, self.data, self.model = recipe, recipe.trainer, plugin, data, model
        self.folder, self.device, self.distributed = folder, device, distributed

    @contextlib.contextmanager
    def randomness_of(self, step: int):
        """Generators seeded by the step, then training's put back."""
        python, numpy = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):  # this GPU only
            seed_everything(self.recipe.seed + step)
            try:
                yield
            finally:
                random.setstate(python)
                np.random.set_state(numpy)

    def summary(self, dataset, step: int) -> dict:
        """evaluate() on dataset's first trainer.eval_batches batches, its noise seeded by the step."""
        loader = DataLoader(dataset, batch_size=self.recipe.eval.batch_size, shuffle=False,
                            collate_fn=self.data.collate)
        with self.randomness_of(step):
            return evaluate(self.model, loader, max_batches=self.cfg.eval_batches, precision=self.cfg.precision)

    def write_samples(self, step: int, name: str = "") -> None:
        """trainer.samples samples into RUN/samples/NAME (step-N by default), where the plugin writes samples."""
        if self.cfg.samples <= 0:
            return
        self.folder.check()
        self.model.eval()
        try:
            with torch.no_grad(), self.randomness_of(step):
                self.plugin.sample(self.model, self.cfg.samples, None,
                                   self.folder.path / "samples" / (name or f"step-{step}"))
        except PluginError:
            pass  # this plugin writes no samples
        finally:
            self.model.train()

    def fit_sampler(self, step: int) -> None:
        """latent.sampler=gmm or pixelcnn: fit it to the training codes of the model `vaekit sample RUN` loads (the
        last checkpoint, or the best one kept), where it finds it; write samples drawn from it beside the prior's."""
        latent = self.recipe.latent
        if latent.sampler != "prior" and self.folder.is_main:
            self._fit_sampler(step)
        if self.distributed:
            dist.barrier()

    def _fit_sampler(self, step: int) -> None:
        latent, run = self.recipe.latent, self.folder.path
        started, prior = time.perf_counter(), self.model.prior_net
        checkpoint = resolve_model_dir(run).name  # what `vaekit sample RUN` loads: the best, if kept
        try:
            self.model.prior_net, record = fitted_prior(self.model, run, self.data.train, self.data.collate,
                                                        latent.sampler, latent.sampler_components,
                                                        latent.sampler_examples, checkpoint, latent.sampler_steps)
            self.folder.log({"step": step, "split": "sampler", "sampler": latent.sampler, "file": str(record),
                             "fit_seconds": round(time.perf_counter() - started, 1)})
            if self.cfg.samples > 0:
                self.write_samples(step, f"{checkpoint}-{latent.sampler}{latent.sampler_components}")
        finally:
            self.model.prior_net = prior
