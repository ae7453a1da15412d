"""The toy datamodule: a fixed training set drawn from a known mixture
(``ganzoo.distributions``: ring, grid, gauss1d), held in memory.

The training set is held as one tensor; each batch is an index draw from it, so a
step pays no DataLoader worker, sampler or collate cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from ganzoo.config import require_int
from ganzoo.data.base import GANDataModule
from ganzoo.data.streams import batch_seed
from ganzoo.distributed import shard
from ganzoo.distributions import GaussianMixture, gauss1d, grid, ring

__all__ = ["GaussianMixture", "RandomBatches", "ToyDataModule", "gauss1d", "grid", "ring"]


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
            generator.manual_seed(batch_seed(self.seed, self.position))
            self.position += 1
            idx = torch.randint(n, (self.batch_size * self.world_size,), generator=generator)
            yield self.data[shard(idx, self.rank, self.world_size)]


class ToyDataModule(GANDataModule):
    """A fixed training set of ``n_train`` points from a known mixture."""

    def __init__(self, distribution: GaussianMixture, name: str, shape: Sequence[int],
                 batch_size: int = 256, n_train: int = 100_000, n_eval: int = 2500,
                 seed: int = 0) -> None:
        super().__init__()
        if tuple(shape) != (distribution.dim,):
            raise ValueError(f"data.shape {list(shape)} does not match the {name} "
                             f"distribution's dimension {distribution.dim}")
        for key, value in (("batch_size", batch_size), ("n_train", n_train),
                           ("n_eval", n_eval)):
            require_int(f"data.{key}", value, 1)
        self.distribution, self.name = distribution, name
        self.shape = tuple(shape)
        self.batch_size, self.n_train, self.n_eval, self.seed = batch_size, n_train, n_eval, seed
        gen = torch.Generator().manual_seed(seed)
        self.train_set = distribution.sample(n_train, generator=gen)  # (n_train, d)
        self.batches = RandomBatches(self.train_set, batch_size, seed + 1)

    def train_dataloader(self):
        if self.trainer is not None:  # data.batch_size is per device
            self.batches.rank = self.trainer.global_rank
            self.batches.world_size = self.trainer.world_size
        return self.blocks(self.batches)

    def seek(self, n_batches: int) -> None:
        """Continue the training stream after ``n_batches`` batches (used on resume)."""
        self.batches.seek(n_batches)

    @property
    def n_modes(self) -> int:
        return self.distribution.means.shape[0]
