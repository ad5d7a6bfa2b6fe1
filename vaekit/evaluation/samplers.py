"""Post-hoc samplers: priors fitted after training to the codes the encoder gives the training set.

    vaekit sample runs/mnist -n 64 --sampler gmm --components 10
    vaekit sample runs/cifar10 -n 64 --sampler pixelcnn     # a spatial latent [C, H, W]

gmm: a full-covariance Gaussian mixture over the flattened posterior means (Ghosh et al. 2020).
pixelcnn: a small autoregressive prior over the latent's pixels (vaekit/core/latent_priors.py), fitted to draws
from the training posteriors: for spatial latents, whose N(0, I) draws decode to textures.

The fitted prior replaces the model's prior for sampling only: training never saw it, so it also gives a plain
autoencoder (objective.kind: ae) a way to sample. It is fitted once per checkpoint and kept in the run
folder as samplers/KIND-K.safetensors + KIND-K.json (which checkpoint, how many examples, the fit's
log-likelihood), and reused while those match. Loading reads safetensors and JSON only (no pickle).
recipe_sampler is the one choice of which sampler a run draws from (its recipe's latent.sampler unless told
otherwise), for `vaekit sample` and the demo alike."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import Tensor, nn

from ..core.batch import to_device
from ..core.fitted_priors import FittedPixelCNNPrior, FittedPrior, FullGaussianMixture, PixelCNNLatents  # noqa: F401
from ..core.latent_priors import LatentPixelCNN, fit_latent_pixelcnn
from ..io.checkpoint import run_dir_of
from ..io.safe_writes import atomic_write_bytes, atomic_write_text
from ..model.latent import sampler_unusable
from ..runs import build_recipe_data, run_recipe


def fit_gmm(points: Tensor, components: int = 10, iterations: int = 200, reg: float = 1e-6, seed: int = 0,
            tol: float = 1e-5) -> tuple[dict[str, Tensor], float]:
    """EM for a full-covariance Gaussian mixture on points [N, U] (k-means++ start): (params, mean log-lik nats).

    EM stops when the mean log-likelihood moves by less than tol of itself in an iteration: on a shapes run's 10,000
    codes tol 1e-5 ends within 0.003 nats of tol 1e-7 in under half the time.
    """
    x = points.double()
    n, u = x.shape
    components = min(components, n)
    generator = torch.Generator().manual_seed(seed)
    centers = [x[torch.randint(n, (1,), generator=generator)].squeeze(0)]
    for _ in range(components - 1):  # k-means++: each new centre far from the ones picked
        dist = torch.cdist(x, torch.stack(centers)).min(1).values ** 2
        centers.append(x[torch.multinomial(dist / dist.sum(), 1, generator=generator)].squeeze(0))
    means = torch.stack(centers)
    eye = torch.eye(u, dtype=x.dtype)
    covs = (torch.cov(x.T).reshape(u, u) + reg * eye).expand(components, u, u).clone()
    weights = torch.full((components,), 1.0 / components, dtype=x.dtype)
    previous = -math.inf
    for _ in range(iterations):
        log_resp = torch.distributions.MultivariateNormal(means, covariance_matrix=covs).log_prob(
            x.unsqueeze(1)) + weights.log()
        log_lik = torch.logsumexp(log_resp, 1)
        resp = (log_resp - log_lik.unsqueeze(1)).exp()  # [N, K]
        counts = resp.sum(0) + 1e-10
        weights = counts / n
        means = (resp.T @ x) / counts.unsqueeze(1)
        centred = x.unsqueeze(0) - means.unsqueeze(1)  # [K, N, U]
        covs = torch.einsum("kn,knu,knv->kuv", resp.T, centred, centred) / counts.reshape(-1, 1, 1) + reg * eye
        current = log_lik.mean().item()
        if abs(current - previous) < tol * max(1.0, abs(current)):
            break
        previous = current
    return {"weights": weights, "means": means, "covs": covs}, current


@torch.no_grad()
def encode_means(model, dataset, collate=None, batch_size: int = 256, max_examples: int = 0) -> Tensor:
    """The posterior mode of each example [N, U] (flattened units); max_examples = 0 means all."""
    from torch.utils.data import DataLoader, Subset

    if max_examples:
        dataset = Subset(dataset, range(min(max_examples, len(dataset))))
    was_training = model.training
    model.eval()
    rows = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = to_device(batch, model.device)
        mode = model.posterior(batch["x"], batch.get("c")).mode()
        rows.append(mode.reshape(mode.shape[0], -1).double().cpu())
    model.train(was_training)
    return torch.cat(rows)


def gmm_unusable(model) -> str | None:
    """Why a fitted mixture cannot stand in for this model's prior (one phrase), or None when it can."""
    return sampler_unusable(model, "gmm")


def recorded_sampler(model) -> dict:
    """The sampler a run's recipe chose (latent.sampler and its settings): what `vaekit sample RUN` draws from."""
    latent = model.config.get("latent") or {}
    kind = latent.get("sampler", "prior")
    if kind == "prior":
        return {"sampler": "prior"}
    return {"sampler": kind, "components": latent["sampler_components"], "max_examples": latent["sampler_examples"],
            "steps": latent.get("sampler_steps", PIXELCNN_STEPS)}


def recipe_sampler(model, plugin, sampler: str | None = None, components: int | None = None,
                   max_examples: int | None = None) -> tuple[nn.Module, Path] | None:
    """The sampler the run's recipe names (latent.sampler and its settings; each argument given overrides one),
    fitted to the run's training codes or loaded from RUN/samplers: (prior module, record file); None when it is
    the model's own prior. What `vaekit sample RUN` and the demo's Sample tab draw from."""
    recorded = recorded_sampler(model)
    kind = sampler or recorded["sampler"]
    if kind == "prior":
        return None
    components = recorded.get("components", 10) if components is None else components
    max_examples = recorded.get("max_examples", 0) if max_examples is None else max_examples
    if components < 1 or max_examples < 0:
        raise ValueError("--components must be >= 1 and --fit-examples >= 0")
    assets = Path(model.config["assets_dir"])
    checkpoint = assets.parent  # the folder the weights were loaded from: the fit is kept per checkpoint
    data = build_recipe_data(plugin, run_recipe(checkpoint), assets)
    return fitted_prior(model, run_dir_of(model), data.train, data.collate, kind, components, max_examples,
                        checkpoint.name, recorded.get("steps", 0))


def use_recipe_sampler(model, plugin, sampler: str | None = None, components: int | None = None,
                       max_examples: int | None = None) -> Path | None:
    """recipe_sampler installed as model.prior_net, where sampling draws from: its record file (None: the prior)."""
    chosen = recipe_sampler(model, plugin, sampler, components, max_examples)
    if chosen is None:
        return None
    model.prior_net, record = chosen
    return record


def use_gmm_sampler(model, plugin, recipe, run_dir: Path, components: int = 10, max_examples: int = 0,
                    checkpoint: str = "") -> Path:
    """Swap model.prior_net for the mixture fitted to the run's training codes (built from the recipe's data);
    returns the sampler's record file."""
    return use_sampler(model, plugin, recipe, run_dir, "gmm", components, max_examples, checkpoint)


def use_sampler(model, plugin, recipe, run_dir: Path, sampler: str, components: int = 10, max_examples: int = 0,
                checkpoint: str = "", steps: int = 0) -> Path:
    """Swap model.prior_net for the sampler (gmm or pixelcnn) fitted to the run's training codes (built from the
    recipe's data); returns the sampler's record file."""
    data = build_recipe_data(plugin, recipe, Path(model.config["assets_dir"]))
    model.prior_net, record = fitted_prior(model, run_dir, data.train, data.collate, sampler, components,
                                           max_examples, checkpoint, steps)
    return record


def fitted_prior(model, run_dir: Path, dataset, collate=None, sampler: str = "gmm", components: int = 10,
                 max_examples: int = 0, checkpoint: str = "", steps: int = 0) -> tuple[nn.Module, Path]:
    """The fitted sampler (gmm or pixelcnn; steps: pixelcnn's training steps, 0 = its default) for this
    checkpoint, loaded from run_dir/samplers or fitted and saved there: (prior module, record file)."""
    if sampler == "gmm":
        return gmm_prior(model, run_dir, dataset, collate, components, max_examples, checkpoint)
    if sampler == "pixelcnn":
        return pixelcnn_prior(model, run_dir, dataset, collate, components, max_examples, checkpoint,
                              steps or PIXELCNN_STEPS)
    raise ValueError(f"sampler: expected prior, gmm or pixelcnn, got {sampler!r}")


def gmm_prior(model, run_dir: Path, dataset, collate=None, components: int = 10, max_examples: int = 0,
              checkpoint: str = "") -> tuple[FittedPrior, Path]:
    """The fitted mixture for this checkpoint, loaded from run_dir/samplers or fitted and saved there."""
    problem = gmm_unusable(model)
    if problem:
        raise ValueError(f"--sampler gmm: this model cannot use a fitted mixture: {problem}")
    folder = Path(run_dir) / "samplers"
    stem = folder / f"gmm-{components}"
    record = {"sampler": "gmm", "components": components, "checkpoint": checkpoint, "max_examples": max_examples}
    meta_path, weights_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if meta_path.is_file() and weights_path.is_file():
        saved = json.loads(meta_path.read_text())
        if {k: saved.get(k) for k in record} == record:
            params = {k: v.to(model.device) for k, v in load_file(str(weights_path)).items()}
            return FittedPrior(params, model.latent_shape), meta_path
    points = encode_means(model, dataset, collate, max_examples=max_examples)
    params, log_lik = fit_gmm(points, components)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(weights_path, save({k: v.contiguous() for k, v in params.items()}))  # never through a link
    atomic_write_text(meta_path, json.dumps({**record, "n_examples": points.shape[0], "units": points.shape[1],
                                            "mean_log_likelihood_nats": log_lik}, indent=2))
    return FittedPrior({k: v.to(model.device) for k, v in params.items()}, model.latent_shape), meta_path


PIXELCNN_STEPS = 3000  # Adam steps (batch 64) of a pixelcnn sampler's fit when the recipe gives none


@torch.no_grad()
def encode_posteriors(model, dataset, collate=None, batch_size: int = 256, max_examples: int = 0
                      ) -> tuple[Tensor, Tensor]:
    """Each example's posterior mean and standard deviation [N, *latent] (a posterior without a std: zeros)."""
    from torch.utils.data import DataLoader, Subset

    if max_examples:
        dataset = Subset(dataset, range(min(max_examples, len(dataset))))
    was_training = model.training
    model.eval()
    means, stds = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = to_device(batch, model.device)
        q = model.posterior(batch["x"], batch.get("c"))
        mean = q.mode()
        means.append(mean.float().cpu())
        stds.append(q.std.float().cpu() if hasattr(q, "std") else torch.zeros_like(means[-1]))
    model.train(was_training)
    return torch.cat(means), torch.cat(stds)


def pixelcnn_prior(model, run_dir: Path, dataset, collate=None, components: int = 10, max_examples: int = 0,
                   checkpoint: str = "", steps: int = PIXELCNN_STEPS) -> tuple[FittedPixelCNNPrior, Path]:
    """The fitted latent PixelCNN for this checkpoint, loaded from run_dir/samplers or fitted and saved there."""
    problem = sampler_unusable(model, "pixelcnn")
    if problem:
        raise ValueError(f"--sampler pixelcnn: this model cannot use a fitted latent PixelCNN: {problem}")
    folder = Path(run_dir) / "samplers"
    stem = folder / f"pixelcnn-{components}"
    record = {"sampler": "pixelcnn", "components": components, "checkpoint": checkpoint,
              "max_examples": max_examples, "steps": steps}
    meta_path, weights_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if meta_path.is_file() and weights_path.is_file():
        saved = json.loads(meta_path.read_text())
        if {k: saved.get(k) for k in record} == record:
            net = LatentPixelCNN(tuple(saved["latent_shape"]), **saved["network"])
            net.load_state_dict(load_file(str(weights_path)))
            return FittedPixelCNNPrior(net.eval().to(model.device)), meta_path
    means, stds = encode_posteriors(model, dataset, collate, max_examples=max_examples)
    net, log_lik = fit_latent_pixelcnn(means, stds, tuple(model.latent_shape), components, steps)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(weights_path, save({k: v.contiguous() for k, v in net.state_dict().items()}))
    atomic_write_text(meta_path, json.dumps({**record, "n_examples": means.shape[0],
                                            "latent_shape": list(net.latent_shape), "network": net.settings,
                                            "mean_log_likelihood_nats": log_lik}, indent=2))
    return FittedPixelCNNPrior(net.to(model.device)), meta_path
