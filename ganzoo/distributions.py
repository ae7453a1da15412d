"""Toy distributions with closed-form densities: isotropic Gaussian mixtures.

``ring``: 8 Gaussians evenly spaced on the unit circle, std 0.01; ``grid``: 25
Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05. Both exactly as in VEEGAN (Srivastava et
al. 2017) and PacGAN (Lin et al. 2018), so their tables compare. ``gauss1d``: a 1-D
mixture given by lists of means, stds and weights. The data layer samples them
(``ganzoo.data.toy``), ``ganzoo.theory`` integrates them, ``ganzoo.eval.toy`` scores
generators against them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class GaussianMixture:
    """Isotropic Gaussian mixture: means (M, d), stds (M,), weights (M,)."""

    def __init__(self, means: Sequence, stds: Sequence[float] | float,
                 weights: Sequence[float] | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float32)
        if self.means.dim() == 1:
            self.means = self.means[:, None]
        m = self.means.shape[0]
        stds_t = torch.as_tensor(stds, dtype=torch.float32).flatten()
        self.stds = stds_t.expand(m).clone() if stds_t.numel() == 1 else stds_t
        w = torch.ones(m) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if self.stds.shape != (m,) or w.shape != (m,):
            raise ValueError(f"data: {m} means need as many stds and weights, got "
                             f"{self.stds.numel()} stds and {w.numel()} weights")
        if (self.stds <= 0).any() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("data: stds must be positive and weights non-negative")
        self.weights = w / w.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.means[idx] + self.stds[idx, None] * noise  # (n, d)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) for x of shape (N, d)."""
        x = x.reshape(-1, self.dim).float()
        d2 = torch.cdist(x, self.means.to(x)) ** 2  # (N, M)
        stds = self.stds.to(x)
        log_comp = (-0.5 * d2 / stds**2 - self.dim * torch.log(stds)
                    - 0.5 * self.dim * math.log(2 * math.pi))
        return torch.logsumexp(log_comp + torch.log(self.weights.to(x)), dim=1)


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture(means, std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    means = torch.cartesian_prod(ticks, ticks)
    return GaussianMixture(means, std)


def gauss1d(means: Sequence[float], stds: Sequence[float],
            weights: Sequence[float] | None = None) -> GaussianMixture:
    return GaussianMixture([[m] for m in means], stds, weights)
