"""Toy distributions with closed-form densities, and an in-memory datamodule.

``ring``: 8 Gaussians evenly spaced on the unit circle, std 0.01; ``grid``: 25
Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05. Both exactly as in VEEGAN (Srivastava et
al. 2017) and PacGAN (Lin et al. 2018), so their tables compare. ``gauss1d``: a 1-D
mixture given by lists of means, stds and weights.

The training set is held as one tensor; each batch is an index draw from it, so a
step pays no DataLoader worker, sampler or collate cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch import Tensor

from ganzoo.distributed import shard
from ganzoo.metrics.toy import mode_metrics


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


class RandomBatches:
    """An endless stream of batches drawn (with replacement) from an in-memory tensor.

    Batch i is a pure function of (seed, i), so a resumed run that seeks to the number
    of batches it has trained on continues exactly the same stream (Lightning's
    prefetching of the next batch does not shift it). Under DDP each of ``world_size``
    ranks draws the global batch and keeps its ``rank``-th slice of ``batch_size``.
    """

    def __init__(self, data: Tensor, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.position = 0
        self.rank, self.world_size = 0, 1

    def seek(self, position: int) -> None:
        self.position = position

    def __iter__(self) -> Iterator[Tensor]:
        n = self.data.shape[0]
        generator = torch.Generator()
        while True:
            generator.manual_seed(hash((self.seed, self.position)) & 0x7FFF_FFFF_FFFF_FFFF)
            self.position += 1
            idx = torch.randint(n, (self.batch_size * self.world_size,), generator=generator)
            yield self.data[shard(idx, self.rank, self.world_size)]


class ToyDataModule(L.LightningDataModule):
    """A fixed training set of ``n_train`` points from a known mixture."""

    def __init__(self, distribution: GaussianMixture, name: str, shape: Sequence[int],
                 batch_size: int = 256, n_train: int = 100_000, n_eval: int = 2500,
                 seed: int = 0) -> None:
        super().__init__()
        if tuple(shape) != (distribution.dim,):
            raise ValueError(f"data.shape {list(shape)} does not match the {name} "
                             f"distribution's dimension {distribution.dim}")
        if batch_size < 1 or n_train < 1 or n_eval < 1:
            raise ValueError("data.batch_size, data.n_train and data.n_eval must be >= 1")
        self.distribution, self.name = distribution, name
        self.shape = tuple(shape)
        self.batch_size, self.n_train, self.n_eval, self.seed = batch_size, n_train, n_eval, seed
        gen = torch.Generator().manual_seed(seed)
        self.train_set = distribution.sample(n_train, generator=gen)  # (n_train, d)
        self.batches = RandomBatches(self.train_set, batch_size, seed + 1)

    def train_dataloader(self) -> RandomBatches:
        if self.trainer is not None:  # data.batch_size is per device
            self.batches.rank = self.trainer.global_rank
            self.batches.world_size = self.trainer.world_size
        return self.batches

    def seek(self, n_batches: int) -> None:
        """Continue the training stream after ``n_batches`` batches (used on resume)."""
        self.batches.seek(n_batches)

    @property
    def n_modes(self) -> int:
        return self.distribution.means.shape[0]

    # --- the datamodule side of evaluation (train.py calls these) ---------------------

    def evaluate(self, module) -> dict[str, float]:
        """PacGAN-protocol metrics on ``n_eval`` samples from fixed noise.

        Beside them, ``eval/divergence_ref``: the true value of what the loss's critic
        reports as ``train/divergence``, in the same units, computed from this mixture's
        closed-form density and the samples (``ganzoo.theory.reference_divergence``).
        """
        from ganzoo.theory import reference_divergence

        d = self.distribution
        fake = module.generate(self.n_eval, seed=self.seed)
        figures = mode_metrics(fake, d.means, d.stds)
        # A packed critic (PacGAN) reports a divergence between m-fold products of the
        # distributions, which this single-sample reference does not measure.
        packed = getattr(module.discriminator, "pack", 1) > 1
        ref = None if packed else reference_divergence(module.loss, d, fake, seed=self.seed)
        if ref is not None:
            figures["eval/divergence_ref"] = ref
        return figures

    def plot(self, path, module, title: str = "") -> None:
        """samples.png: generated points over the data, the critic as a heat map."""
        from ganzoo.plots import plot_toy

        fake = module.generate(self.n_eval, seed=self.seed)
        plot_toy(path, self.train_set[: self.n_eval], fake, module.discriminator, title,
                 density=lambda x: self.distribution.log_prob(x).exp())
