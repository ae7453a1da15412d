"""Stacked digits: three scikit-learn digits as the three channels of one image, 1,000
modes, offline.

The construction of Stacked MNIST (Metz et al. 2017, Sec. 3.3.2; Srivastava et al. 2017,
Sec. 5.2; Lin et al. 2018, Sec. 5.2) on scikit-learn's 1,797 8x8 digits, upsampled to
16x16: each channel of a sample is a digit image drawn on its own, so the data has
10^3 = 1000 modes (the triples of classes), equally likely up to the digits' class
shares. The training stream draws a fresh index triple for every sample of every batch
(not a fixed set of stacked images), so every combination occurs; batch i is a pure
function of (seed, i), so a resumed run continues the same stream (``seek``).

Labels are 100 a + 10 b + c for the classes (a, b, c) of the three channels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torchvision.transforms import v2

from ganzoo.data.images import ImageDataModule, _digits
from ganzoo.data.streams import DeviceBatches, batch_seed
from ganzoo.distributed import shard

PLACES = (100, 10, 1)  # label of a triple (a, b, c): 100 a + 10 b + c


def digits(side: int) -> tuple[Tensor, Tensor]:
    """scikit-learn's digits at ``side`` x ``side``: uint8 (1797, 1, side, side) and the
    classes (1797,)."""
    images, labels = _digits()
    if side != images.shape[-1]:
        images = v2.functional.resize(images, [side, side], antialias=True)
    return images.contiguous(), labels


def stack(images: Tensor, labels: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Samples whose channel k is digit ``idx[:, k]``: (B, 3, H, W) and 100 a + 10 b + c."""
    places = torch.tensor(PLACES, device=labels.device)
    return images[idx, 0], (labels[idx] * places).sum(1)  # idx: (B, 3)


class StackedBatches(DeviceBatches):
    """Endless batches of stacked digits: three independent index draws per sample, from
    single-channel uint8 images (N, 1, H, W); under DDP each rank keeps its slice of the
    global batch."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, gen = self.images.shape[0], torch.Generator()
        while True:
            gen.manual_seed(batch_seed(self.seed, self.position))  # batch i: f(seed, i)
            self.position += 1
            idx = torch.randint(n, (self.batch_size * self.world_size, 3), generator=gen)
            idx = shard(idx, self.rank, self.world_size).to(self.images.device)
            yield stack(self.images, self.labels, idx)


class StackedDigits(ImageDataModule):
    """``data=stacked_digits``: batches of (uint8 (B, 3, S, S), label 100 a + 10 b + c).

    ``n_train`` keeps the first n digit images as the pool the channels are drawn from.
    """

    def __init__(self, name: str = "stacked_digits", shape: Sequence[int] = (3, 16, 16),
                 n_train: int | None = None, flip: bool = False,
                 clusters: int | None = None, on_device: bool = True, **kwargs) -> None:
        if name != "stacked_digits":
            raise ValueError(f"data.name: StackedDigits makes stacked_digits, got {name!r}")
        if list(shape)[:1] != [3]:
            raise ValueError(f"data.shape: stacked digits have 3 channels (one digit each), "
                             f"got {list(shape)}")
        if clusters is not None:
            raise ValueError("data.clusters: stacked_digits trains unconditionally on its "
                             "1,000 modes; leave data.clusters=null")
        if flip:
            raise ValueError("data.flip: a mirrored digit is not a digit; stacked_digits "
                             "takes data.flip=false")
        # on_device is accepted for the shared image config: the digits are always held
        # in memory (a few hundred kB).
        super().__init__("digits", shape, n_train=n_train, flip=False, **kwargs)
        self.name = name

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        images, labels = digits(self.shape[1])
        self.images, self.labels = images[: self.n_train], labels[: self.n_train]
        self.batches = StackedBatches(self.images, self.labels, self.batch_size,
                                      self.seed + 1, flip=False)
        self.batches.seek(self._start)

    def real_images(self, n: int, batch_size: int = 200) -> Iterator[Tensor]:
        """uint8 batches (B, 3, S, S) of n fixed stacked samples, the same for every run
        and seed (index triples from seed 0)."""
        self.setup()
        gen = torch.Generator().manual_seed(0)
        idx = torch.randint(self.images.shape[0], (n, 3), generator=gen)
        for chunk in idx.split(batch_size):
            yield stack(self.images, self.labels, chunk.to(self.images.device))[0]
