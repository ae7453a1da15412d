"""The generator's latent prior: what the noise z is before it enters G.

Every sample starts as a standard normal draw, ``torch.randn(n, latent_dim)``, in
training, evaluation and sampling from a checkpoint alike; the prior maps that draw to
the generator's input. ``prior=gaussian`` (the default) is the identity: z ~ N(0, I).

``prior=mixture`` is a fixed mixture of K equally weighted Gaussians,
z = m_k + sigma * e with e ~ N(0, I), whose means m_k are drawn once (from ``seed``) from
N(0, radius^2 / d * I) in d = latent_dim dimensions: in a high dimension each mean lies
about ``radius`` from the origin and radius * sqrt(2) from every other, in two they
scatter over a disc of that scale. A generator is a continuous map, so from the connected
support of N(0, I) it must pass through the space between the data's modes, and the
samples that fall there are blends of two modes: the off-mode points between the ring's
Gaussians, the ambiguous strokes between two digits. With the components apart, the
prior has (almost) no mass between them, and each can go to its own mode; no labels are
used, the generator and critic stay unconditional (a fixed form of the mixture priors of
Gurumurthy et al. 2017, DeLiGAN, and Ben-Yosef & Weinshall 2018, GM-GAN).

The map is exact and uses the one standard normal draw only: the component is the bin of
Phi(z_0) among K equal-mass bins, and z_0's position inside its bin, mapped back through
Phi^-1, is again a standard normal, independent of the bin. So a seed gives the same
standard normal draws whichever prior a run uses, and the noise streams of training (DDP
included), evaluation and sampling are those of the Gaussian prior.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganzoo.errors import ConfigError

__all__ = ["Gaussian", "GaussianMixture", "build_prior"]


class Gaussian:
    """z ~ N(0, I): the draw itself."""

    def __call__(self, z: Tensor) -> Tensor:
        return z

    def __repr__(self) -> str:
        return "Gaussian()"


class GaussianMixture:
    """K equally weighted Gaussians N(m_k, sigma^2 I) (see the module docstring); with
    ``factors`` = F > 1, a product of F such mixtures, one per block of latent_dim / F
    coordinates: K^F components, each chosen by F independent bins."""

    def __init__(self, components: int, radius: float = 8.0, sigma: float = 1.0,
                 seed: int = 0, factors: int = 1) -> None:
        for key, value in (("components", components), ("factors", factors)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"prior.{key} must be an integer >= 1, got {value!r}")
        for key, value in (("radius", radius), ("sigma", sigma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value >= 0):
                raise ConfigError(f"prior.{key} must be a finite number >= 0, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"prior.seed must be an integer, got {seed!r}")
        self.components, self.radius, self.sigma = components, float(radius), float(sigma)
        self.seed, self.factors = seed, factors
        self._means: dict[tuple, Tensor] = {}

    def check(self, latent_dim: int) -> None:
        """Refuse, in one line, a latent space with fewer coordinates than factors."""
        if self.factors > latent_dim:
            raise ConfigError(f"prior.factors={self.factors} needs at least as many latent "
                              f"dimensions, model.latent_dim={latent_dim}")

    def blocks(self, dim: int) -> list[Tensor]:
        """The coordinates of each factor: F contiguous blocks, as equal as they come."""
        self.check(dim)
        return list(torch.arange(dim).tensor_split(self.factors))

    def means(self, dim: int, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> Tensor:
        """The component means (F, K, dim), factor f's on its block and 0 elsewhere, drawn
        from N(0, radius^2 / dim) per coordinate with seed (on the CPU, so every device
        gets the same). F = 1: (1, K, dim), one mixture over all coordinates."""
        key = (dim, str(device), dtype)
        if key not in self._means:
            gen = torch.Generator().manual_seed(self.seed)
            m = torch.zeros(self.factors, self.components, dim, dtype=torch.float64)
            for f, block in enumerate(self.blocks(dim)):
                g = torch.randn(self.components, len(block), generator=gen, dtype=torch.float64)
                m[f][:, block] = self.radius / math.sqrt(dim) * g
            self._means[key] = m.to(device=device, dtype=dtype)
        return self._means[key]

    def _bins(self, z: Tensor) -> tuple[list[int], Tensor, Tensor]:
        """The choosing coordinates (the first of each block), their places K * Phi(z) in
        [0, K) (N, F), and the bins those fall in (N, F; float64)."""
        firsts = [int(b[0]) for b in self.blocks(z.shape[1])]
        u = torch.special.ndtr(z[:, firsts].double()) * self.components
        return firsts, u, u.floor().clamp(0, self.components - 1)

    def components_of(self, z: Tensor) -> Tensor:
        """Which component each standard normal draw z (N, dim) goes to: (N, F), factor f's
        chosen by the first coordinate of its block."""
        return self._bins(z)[2].long()

    def __call__(self, z: Tensor) -> Tensor:
        if z.dim() != 2:
            raise ValueError(f"the prior maps (N, latent_dim) draws, got shape {tuple(z.shape)}")
        firsts, u, k = self._bins(z)
        # Each choosing coordinate's place inside its bin is uniform on [0, 1): back to a
        # standard normal.
        tiny = torch.finfo(torch.float64).eps
        e = z.clone()
        e[:, firsts] = torch.special.ndtri((u - k).clamp(tiny, 1 - tiny)).to(z.dtype)
        means, k = self.means(z.shape[1], z.device, z.dtype), k.long()
        m = means[0][k[:, 0]]
        for f in range(1, self.factors):
            m = m + means[f][k[:, f]]
        return m + self.sigma * e

    def __repr__(self) -> str:
        return (f"GaussianMixture(components={self.components}, radius={self.radius}, "
                f"sigma={self.sigma}, seed={self.seed}, factors={self.factors})")


PRIORS = {"ganzoo.priors.Gaussian": Gaussian, "ganzoo.priors.GaussianMixture": GaussianMixture}


def build_prior(record: dict | None):
    """The prior a checkpoint's record describes (None: the Gaussian, as before priors
    were recorded); only ganzoo's own priors are built."""
    if record is None:
        return Gaussian()
    args = dict(record)
    target = args.pop("_target_", None)
    if target not in PRIORS:
        raise ValueError(f"unknown latent prior {target!r}; known: {', '.join(PRIORS)}")
    return PRIORS[target](**args)
