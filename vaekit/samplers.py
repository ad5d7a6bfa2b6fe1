"""Post-hoc samplers: priors fitted after training to the codes the encoder gives the training set.

    vaekit sample runs/mnist -n 64 --sampler gmm --components 10
    vaekit sample runs/cifar10 -n 64 --sampler pixelcnn     # a spatial latent [C, H, W]

gmm: a full-covariance Gaussian mixture over the flattened posterior means (Ghosh et al. 2020).
pixelcnn: a small autoregressive prior over the latent's pixels (vaekit/latent_priors.py), fitted to draws
from the training posteriors: for spatial latents, whose N(0, I) draws decode to textures.

The fitted prior replaces the model's prior for sampling only: training never saw it, so it also gives a plain
autoencoder (objective.kind: ae) a way to sample. It is fitted once per checkpoint and kept in the run
folder as samplers/KIND-K.safetensors + KIND-K.json (which checkpoint, how many examples, the fit's
log-likelihood), and reused while those match. Loading reads safetensors and JSON only (no pickle)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import Tensor, nn

from .batch import to_device
from .safe_io import atomic_write_bytes, atomic_write_text


class FullGaussianMixture:
    """sum_k w_k N(means_k, covs_k) over flattened units [U], reshaped to the latent's event shape on sampling."""

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor, event_shape: tuple[int, ...], batch_size: int):
        self.weights, self.means, self.covs = weights, means, covs
        self.event_shape, self.batch_size = tuple(event_shape), batch_size
        self.mask = None
        self.event_dims = len(self.event_shape)
        self.mean = (weights @ means).reshape(self.event_shape).expand(batch_size, *self.event_shape)
        self.components = torch.distributions.MultivariateNormal(means, covariance_matrix=covs)
        self._cholesky = None  # the components' Cholesky factors [K, U, U], on the first draw

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (nats): z [..., *event] -> [...]."""
        flat = z.reshape(*z.shape[:z.dim() - self.event_dims], 1, -1).to(self.means.dtype)
        return torch.logsumexp(self.components.log_prob(flat) + self.weights.log(), -1).to(z.dtype)

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Draws [batch_size, *event] (or [n, batch_size, *event]); temperature scales each component's spread."""
        shape = (self.batch_size,) if n is None else (n, self.batch_size)
        k = torch.multinomial(self.weights, math.prod(shape), replacement=True)
        eps = torch.randn(len(k), self.means.shape[1], dtype=self.means.dtype, device=self.means.device)
        if self._cholesky is None:
            self._cholesky = torch.linalg.cholesky(self.covs)
        draws = self.means[k].clone()
        for component in k.unique():  # one matrix product per component, not a [U, U] factor per draw
            picked = k == component
            draws[picked] += temperature * eps[picked] @ self._cholesky[component].T
        return draws.float().reshape(*shape, *self.event_shape)


class FittedPrior(nn.Module):
    """A prior module for VAE.prior_net built from fitted mixture parameters (no trainable weights)."""

    def __init__(self, params: dict[str, Tensor], event_shape: tuple[int, ...]):
        super().__init__()
        self.params, self.latent_shape = params, tuple(event_shape)

    def forward(self, c, batch_size: int, like=None, shape=None, mask=None) -> FullGaussianMixture:
        if (shape is not None and tuple(shape) != self.latent_shape) or mask is not None:
            raise ValueError(f"the fitted sampler is over latents of shape {self.latent_shape}")
        p = self.params
        return FullGaussianMixture(p["weights"], p["means"], p["covs"], self.latent_shape, batch_size)


def fit_gmm(points: Tensor, components: int = 10, iterations: int = 200, reg: float = 1e-6, seed: int = 0,
            tol: float = 1e-7) -> tuple[dict[str, Tensor], float]:
    """EM for a full-covariance Gaussian mixture on points [N, U] (k-means++ start): (params, mean log-lik nats)."""
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


def sampler_unusable(model, sampler: str) -> str | None:
    """Why a fitted sampler (gmm or pixelcnn) cannot stand in for this model's prior (one phrase), or None."""
    from .model import StandardNormalPrior
    from .priors import MixturePrior, VampPrior

    shape = tuple(model.latent_shape)
    if any(size is None for size in shape):
        return f"its latent has no fixed shape ({shape})"
    if not isinstance(model.prior_net, (StandardNormalPrior, MixturePrior, VampPrior, FittedPrior,
                                        FittedPixelCNNPrior)):
        return "it has a learned conditional prior, which a prior fitted without the condition would replace"
    if sampler == "pixelcnn" and len(shape) != 3:
        return f"pixelcnn needs a spatial latent [channels, height, width]; this model's is {shape}"
    return None


def recorded_sampler(model) -> dict:
    """The sampler a run's recipe chose (latent.sampler and its settings): what `vaekit sample RUN` draws from."""
    latent = model.config.get("latent") or {}
    kind = latent.get("sampler", "prior")
    if kind == "prior":
        return {"sampler": "prior"}
    return {"sampler": kind, "components": latent["sampler_components"], "max_examples": latent["sampler_examples"],
            "steps": latent.get("sampler_steps", PIXELCNN_STEPS)}


def use_gmm_sampler(model, plugin, recipe, run_dir: Path, components: int = 10, max_examples: int = 0,
                    checkpoint: str = "") -> Path:
    """Swap model.prior_net for the mixture fitted to the run's training codes (built from the recipe's data);
    returns the sampler's record file."""
    return use_sampler(model, plugin, recipe, run_dir, "gmm", components, max_examples, checkpoint)


def use_sampler(model, plugin, recipe, run_dir: Path, sampler: str, components: int = 10, max_examples: int = 0,
                checkpoint: str = "", steps: int = 0) -> Path:
    """Swap model.prior_net for the sampler (gmm or pixelcnn) fitted to the run's training codes (built from the
    recipe's data); returns the sampler's record file."""
    # Imported here: recipe (which plugin imports) imports latent, which imports this module.
    from .plugin import build_recipe_data

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


class PixelCNNLatents:
    """Draws from a fitted LatentPixelCNN, shaped like the model's prior: [batch_size, C, H, W]."""

    def __init__(self, net, batch_size: int):
        self.net, self.batch_size = net, batch_size
        self.event_shape, self.mask, self.event_dims = net.latent_shape, None, 3
        # the codes' per-channel mean: what `temperature` scales around has no closed form for this prior
        self.mean = net.shift.reshape(-1, 1, 1).expand(batch_size, *net.latent_shape)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (nats): z [B, C, H, W] -> [B]."""
        return self.net.log_prob(z)

    def sample(self, n: int | None = None, temperature: float = 1.0) -> Tensor:
        """Draws [batch_size, C, H, W] (or [n, batch_size, C, H, W]); temperature scales each component's spread."""
        count = self.batch_size * (1 if n is None else n)
        draws = torch.cat([self.net.sample(min(1000, count - i), temperature) for i in range(0, count, 1000)])
        return draws if n is None else draws.reshape(n, self.batch_size, *self.event_shape)


class FittedPixelCNNPrior(nn.Module):
    """A prior module for VAE.prior_net around a fitted LatentPixelCNN (its weights are not trained further)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.latent_shape = net, tuple(net.latent_shape)

    def forward(self, c, batch_size: int, like=None, shape=None, mask=None) -> PixelCNNLatents:
        if (shape is not None and tuple(shape) != self.latent_shape) or mask is not None:
            raise ValueError(f"the fitted sampler is over latents of shape {self.latent_shape}")
        return PixelCNNLatents(self.net, batch_size)


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
    from .latent_priors import LatentPixelCNN, fit_latent_pixelcnn

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
