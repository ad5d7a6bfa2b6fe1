"""Evaluation over a data loader: ELBO, KL, importance-sampled NLL, active units and I(x; z) (nats)."""

from __future__ import annotations

import contextlib

import torch
from tqdm.auto import tqdm

from ..core.batch import batch_size, to_device
from ..core.distributions import DiagonalGaussian
from ..objectives.elbo import elbo, iw_nll
from ..objectives.sampling import prior_for
from .diagnostics import active_units, mutual_information, unit_means


def autocast(device: torch.device, precision: str):
    """bf16 autocast when asked for, a no-op otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, loader, *, iw_samples: int = 0, max_batches: int = 0, precision: str = "fp32",
             progress: bool = False, description: str = "eval", refine_steps: int = 0) -> dict[str, float]:
    """Mean per-example ELBO, rec, KL and (k > 0) IW NLL, in nats; active units, MI; over the loader.

    max_batches = 0 means the whole loader. Results: elbo, rec (-log p(x|z), z drawn from q), rec_mean
    (-log p(x|z) at the posterior mode), kl, nll (when iw_samples > 0), active_units, mi, kl_per_dim
    (list), n_examples. refine_steps > 0 draws the NLL's samples from q(z|x) refined per example
    (vaekit.objectives.refine) and adds nll_amortized, the same estimate from the encoder's q: their difference is
    what the encoder's amortisation costs the estimate. A model with a classifier q(y|x) (M2) also gives
    class_error, the % of examples whose most likely class is not their class c.
    """
    was_training = model.training
    model.eval()
    device = model.device
    totals = {"elbo": 0.0, "rec": 0.0, "rec_mean": 0.0, "kl": 0.0, "nll": 0.0, "nll_amortized": 0.0}
    means, kl_dims, mi_values, n = [], 0.0, [], 0
    classifies, wrong = hasattr(model, "class_logits"), 0
    batches = len(loader) if max_batches <= 0 else min(max_batches, len(loader))
    bar = tqdm(loader, total=batches, desc=description, disable=not progress, leave=False, mininterval=1.0)
    for i, batch in enumerate(bar):
        if i >= batches:
            break
        batch = to_device(batch, device)
        x, c = batch["x"], batch.get("c")
        b = batch_size(x)
        with autocast(device, precision):
            posterior = model.posterior(x, c)
            z, log_qz = posterior.rsample_and_log_prob()
            terms = elbo(model.log_likelihood(x, z, c), posterior, prior_for(model, c, b, posterior), z=z,
                         log_qz=log_qz)
        totals["elbo"] += terms.elbo.float().sum().item()
        totals["rec"] += -terms.log_likelihood.float().sum().item()
        with autocast(device, precision):  # the code itself decoded: what an autoencoder (kind: ae) is judged by
            totals["rec_mean"] += -model.log_likelihood(x, posterior.mode(), c).float().sum().item()
        totals["kl"] += terms.kl.float().sum().item()
        kl_dims = kl_dims + terms.kl_per_dim.float() * b
        means.append(unit_means(posterior).float().cpu())
        if b > 1 and isinstance(posterior, DiagonalGaussian):  # a flow's q(z|x) has no closed-form mixture
            mi_values.append((mutual_information(posterior), b))
        if iw_samples > 0:
            totals["nll"] += iw_nll(model, x, c, k=iw_samples, refine_steps=refine_steps).sum().item()
            if refine_steps > 0:
                totals["nll_amortized"] += iw_nll(model, x, c, k=iw_samples).sum().item()
        if classifies:
            wrong += int((model.class_logits(model.features(x)).argmax(-1) != c.reshape(-1)).sum())
        n += b
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluation data is empty")
    summary = {key: value / n for key, value in totals.items()}
    if iw_samples <= 0:
        del summary["nll"]
    if iw_samples <= 0 or refine_steps <= 0:
        del summary["nll_amortized"]
    summary["active_units"], _ = active_units(torch.cat(means))
    summary["mi"] = sum(v * w for v, w in mi_values) / max(1, sum(w for _, w in mi_values))
    # per-unit KL exists in closed form only (empty for a Monte Carlo KL: a mixture prior, a flow posterior)
    summary["kl_per_dim"] = [round(v, 5) for v in (kl_dims / n).tolist()] if torch.is_tensor(kl_dims) else []
    summary["n_examples"] = n
    if classifies:
        summary["class_error"] = 100.0 * wrong / n
    return summary
