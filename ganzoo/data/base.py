"""The datamodule contract: what the loop needs from a dataset, declared once.

A ganzoo datamodule is a ``LightningDataModule`` that serves data and nothing else
(evaluation is a plugin of its own, ``ganzoo.eval``). Subclass ``GANDataModule`` and
provide:

    name: str                 the dataset's name (reports, checkpoints, caches)
    shape: tuple[int, ...]    one sample's shape, e.g. (2,) or (3, 32, 32)
    train_dataloader()        batches x, or (x, labels) when num_classes > 0
    seek(n_batches)           continue the stream after n batches (exact resume)

and, where they apply:

    num_classes: int          how many labels the batches carry (0: none)
    label_prior: Tensor|None  the labels' shares, when fake labels should follow them
                              (k-means cluster labels); None: uniform
    real_images(n, batch_size) -> Iterator[uint8 (B, C, H, W)]
                              n fixed training images, for image evaluators (FID, ...)

A datamodule whose training stream is endless and seekable (a ``position`` attribute:
the index of its next batch, as ganzoo's in-memory streams have) may return
``self.blocks(stream)`` from ``train_dataloader``: on one device the loop then trains on
``Block``s of consecutive batches, one call of ``training_step`` each (``ganzoo.updates``);
its ``on_after_batch_transfer``, if it has one, then maps over the batches of a Block.

``check_datamodule`` runs when training starts and names what is missing in one line.
"""

from __future__ import annotations

import lightning as L
from torch import Tensor

REQUIRED = ("name", "shape", "train_dataloader", "seek")


class GANDataModule(L.LightningDataModule):
    """Base class of ganzoo's datamodules; see the module docstring for the contract."""

    name: str
    shape: tuple[int, ...]
    num_classes: int = 0
    label_prior: Tensor | None = None

    # Set by the GAN module at setup: generator steps per block and critic steps per
    # generator step (1, 1: no blocks).
    train_block: tuple[int, int] = (1, 1)

    def blocks(self, stream):
        """``stream`` served in Blocks of ``train_block`` (as it is without blocks)."""
        from ganzoo.data.streams import Blocked

        steps, critic = self.train_block
        return stream if steps == 1 else Blocked(stream, steps * critic, critic)

    def seek(self, n_batches: int) -> None:
        """Continue the training stream after ``n_batches`` batches (used on resume)."""
        raise NotImplementedError(f"{type(self).__name__} cannot continue its stream (seek)")


def check_datamodule(dm) -> None:
    """Raise ConfigError naming what a datamodule lacks of the contract."""
    from ganzoo.config import ConfigError

    missing = [a for a in REQUIRED if getattr(dm, a, None) is None]
    if "seek" not in missing and getattr(type(dm), "seek", None) is GANDataModule.seek:
        missing.append("seek")
    if missing:
        raise ConfigError(f"data: {type(dm).__name__} lacks {', '.join(missing)} (the "
                          f"datamodule contract: ganzoo.data.base)")
    if not isinstance(getattr(dm, "num_classes", 0) or 0, int):
        raise ConfigError(f"data: {type(dm).__name__}.num_classes must be an integer")
