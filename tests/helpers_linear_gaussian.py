"""A linear-Gaussian latent model whose log p(x) is known exactly, for checking the engine's estimators.

    z ~ N(0, I_D),  x = W z + b + noise,  noise ~ N(0, sigma^2 I_X)   =>   x ~ N(b, W W^T + sigma^2 I_X)

W has orthogonal columns (W = Q diag(s)), so the exact posterior p(z|x) is a diagonal Gaussian:
variance 1 / (1 + s^2 / sigma^2) and mean var * W^T (x - b) / sigma^2. The amortised posterior the model
exposes is that exact one made deliberately wrong (variance inflated, mean shifted), so the ELBO and
IWAE bounds are strictly below log p(x) and the importance sampler has real work to do.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaekit import DiagonalGaussian


class LinearGaussianModel:
    """posterior(x, c) / prior(c, n) / log_likelihood(x, z, c): the interface vaekit's objectives use."""

    def __init__(self, x_dim: int = 5, z_dim: int = 2, sigma: float = 0.5, var_inflation: float = 2.0,
                 mean_shift: float = 0.3, seed: int = 1234):
        generator = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(x_dim, z_dim, generator=generator, dtype=torch.float64))
        self.scales = torch.linspace(1.0, 2.0, z_dim, dtype=torch.float64)
        self.W = q * self.scales  # orthogonal columns with norms `scales`
        self.b = torch.randn(x_dim, generator=generator, dtype=torch.float64)
        self.sigma = sigma
        self.var_inflation = var_inflation
        self.mean_shift = mean_shift  # in units of the exact posterior's standard deviation
        self.x_dim, self.z_dim = x_dim, z_dim
        self.max_rows_decoded = 0  # largest batch log_likelihood has seen: checks chunked memory use

    # -- exact answers --------------------------------------------------------------------------
    def exact_log_px(self, x: Tensor) -> Tensor:
        """log p(x) under N(b, W W^T + sigma^2 I): [B] nats."""
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.x_dim, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x.double())

    def exact_posterior(self, x: Tensor) -> DiagonalGaussian:
        """p(z|x), diagonal because W's columns are orthogonal."""
        var = 1.0 / (1.0 + self.scales**2 / self.sigma**2)
        mean = var * ((x.double() - self.b) @ self.W) / self.sigma**2
        return DiagonalGaussian(mean, torch.log(var).expand_as(mean))

    def sample_x(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n data points from the model: [n, X] float64."""
        z = torch.randn(n, self.z_dim, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.x_dim, generator=generator, dtype=torch.float64)
        return z @ self.W.T + self.b + self.sigma * noise

    # -- the model interface ----------------------------------------------------------------------
    def posterior(self, x: Tensor, c: Tensor | None = None) -> DiagonalGaussian:
        """The imperfect amortised q(z|x): exact posterior, variance inflated and mean shifted."""
        exact = self.exact_posterior(x)
        mean = exact.mean + self.mean_shift * exact.std
        return DiagonalGaussian(mean, exact.logvar + math.log(self.var_inflation))

    def prior(self, c: Tensor | None = None, batch_size: int = 1) -> DiagonalGaussian:
        return DiagonalGaussian.standard((batch_size, self.z_dim), dtype=torch.float64)

    def log_likelihood(self, x: Tensor, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log N(x; W z + b, sigma^2 I) summed over x's dimensions: [B] nats."""
        self.max_rows_decoded = max(self.max_rows_decoded, x.shape[0])
        residual = x.double() - (z.double() @ self.W.T + self.b)
        return (-0.5 * (residual / self.sigma) ** 2 - math.log(self.sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def analytic_elbo(self, x: Tensor) -> Tensor:
        """E_q[log p(x, z) - log q(z|x)] = log p(x) - KL(q(z|x) || p(z|x)): [B] nats."""
        return self.exact_log_px(x) - self.posterior(x).kl(self.exact_posterior(x))
