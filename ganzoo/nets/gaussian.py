"""A Gaussian generator G(z) = mu + sigma z, for the f-GAN experiment of Nowozin et al. 2016.

Section 4.1 of the f-GAN paper fits a single Gaussian to a mixture under each
f-divergence; the fitted (mu, sigma) can then be compared with the divergence's exact
minimiser. sigma is stored as log sigma so gradient steps cannot make it negative. The
critic is the toy MLP of ``ganzoo.nets.mlp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganzoo.nets.mlp import MLPDiscriminator

__all__ = ["GaussianGenerator", "MLPDiscriminator"]


class GaussianGenerator(nn.Module):
    def __init__(self, data_shape: Sequence[int], latent_dim: int = 1, mu: float = 0.0,
                 sigma: float = 1.0) -> None:
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        if self.data_shape != (1,) or latent_dim != 1:
            raise ValueError("model=gaussian is 1-D: it needs data.shape [1] and "
                             f"latent_dim 1, got {list(self.data_shape)} and {latent_dim}")
        if sigma <= 0:
            raise ValueError(f"model.generator.sigma must be positive, got {sigma}")
        self.latent_dim = latent_dim
        self.mu = nn.Parameter(torch.tensor(float(mu)))
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))

    @property
    def sigma(self) -> Tensor:
        return self.log_sigma.exp()

    def forward(self, z: Tensor) -> Tensor:  # (N, 1) -> (N, 1)
        return self.mu + self.sigma * z
