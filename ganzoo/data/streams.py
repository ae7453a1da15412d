"""In-memory image streams: batches drawn on the training device, and k-means cluster
labels (data.clusters).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch import Tensor

from ganzoo.config import ConfigError
from ganzoo.distributed import shard

log = logging.getLogger("ganzoo")


def cluster_labels(images: Tensor, k: int, seed: int) -> tuple[Tensor, Tensor]:
    """k-means (scikit-learn, 10 restarts) on the images' pixels: each image's cluster
    (N,) and each cluster's share of the images (k,). These stand in for class labels, so
    a conditional model trains without any (a fixed-cluster form of the self-conditioned
    GAN, Liu et al. 2020): each cluster gets its own generator mode, and sampling draws
    the cluster in proportion to its share."""
    from sklearn.cluster import KMeans

    n = images.shape[0]
    if k > n:
        raise ConfigError(f"data.clusters={k}: more clusters than training images ({n})")
    x = images.reshape(n, -1).float().div(255).numpy()
    labels = KMeans(k, n_init=10, random_state=seed).fit(x).labels_
    labels = torch.from_numpy(labels).long()
    counts = torch.bincount(labels, minlength=k)
    log.debug("data: %d k-means clusters of the %d training images as labels (sizes %d-%d)",
             k, n, int(counts.min()), int(counts.max()))
    return labels, counts.double().div(n).float()


def batch_seed(seed: int, position: int) -> int:
    """The seed of batch ``position`` of the stream of ``seed``. torch's CPU generator
    keeps only the low 32 bits of a seed, so (seed, position) are mixed by hashing, not
    packed into high and low bits: ``(seed << 32) + position``
    gave every seed the same batches."""
    return hash((seed, position)) & 0x7FFF_FFFF_FFFF_FFFF


class DeviceBatches:
    """Endless (images, labels) batches drawn with replacement from uint8 tensors; under
    DDP each rank draws the global batch and keeps its own slice."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, seed: int,
                 flip: bool) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.flip = batch_size, seed, flip
        self.position = 0
        self.rank, self.world_size = 0, 1

    def to(self, device: torch.device) -> DeviceBatches:
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        return self

    def seek(self, position: int) -> None:
        self.position = position

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, gen = self.images.shape[0], torch.Generator()
        while True:
            gen.manual_seed(batch_seed(self.seed, self.position))  # batch i: f(seed, i)
            self.position += 1
            total = self.batch_size * self.world_size
            idx = torch.randint(n, (total,), generator=gen)
            flips = torch.rand(total, generator=gen) < 0.5
            idx = shard(idx, self.rank, self.world_size).to(self.images.device)
            flips = shard(flips, self.rank, self.world_size)
            x = self.images[idx]  # (B, C, H, W) uint8
            if self.flip:
                mask = flips.to(x.device)[:, None, None, None]
                x = torch.where(mask, x.flip(3), x)
            yield x, self.labels[idx]


class Block(list):
    """Consecutive training batches, trained on in turn by one call of ``training_step``
    (``ganzoo.updates``: Lightning's per-batch loop then runs once per block)."""


class Blocked:
    """An endless, seekable stream (a ``position``, its next batch's index) served in
    Blocks: the first of each iteration holds one generator iteration (``first``
    batches, so the first update is seen as it ends), the others end on the positions
    that are multiples of ``size`` batches, wherever the stream was sought to, and hold
    at most ``max_bytes`` of tensors (fewer batches per block for large ones)."""

    def __init__(self, stream, size: int, first: int, max_bytes: int = 8 * 2**20) -> None:
        self.stream, self.size, self.first, self.max_bytes = stream, size, first, max_bytes

    def __iter__(self) -> Iterator[Block]:
        batches = iter(self.stream)
        block = Block(next(batches) for _ in range(self.first))
        per_batch = sum(t.nbytes for t in _tensors(block)) / len(block)
        # The largest whole number of iterations within max_bytes whose multiples are
        # multiples of size too (one iteration at least).
        size = max(d for d in range(self.first, self.size + 1, self.first)
                   if self.size % d == 0 and (d == self.first or d * per_batch <= self.max_bytes))
        yield block
        while True:
            yield Block(next(batches) for _ in range(size - self.stream.position % size))


def _tensors(batches):
    for batch in batches:
        yield from (batch if isinstance(batch, (list, tuple)) else [batch])
