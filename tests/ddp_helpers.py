"""Callbacks that tests inject into real train.py runs (``+callbacks.<name>._target_=``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from ganzoo.losses import NonSaturating


class DumpState(L.Callback):
    """At the end of training, save the module's state (G, D, buffers) and the batch
    shapes it trained on, per rank, to ``dirpath/rank<global rank>.pt``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.batch_sizes: list[int] = []
        self.initial: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.batch_sizes.append(real.shape[0])

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save({"state": state, "world_size": trainer.world_size,
                    "initial": self.initial,
                    "batch_sizes": self.batch_sizes, "g_step": pl_module.g_step},
                   self.dirpath / f"rank{trainer.global_rank}.pt")


class NaNOnRank1(NonSaturating):
    """A generator objective that turns NaN on rank 1 alone, from its 5th call."""

    calls = 0

    def g_loss(self, real_logits, fake_logits):
        NaNOnRank1.calls += 1
        value = super().g_loss(real_logits, fake_logits)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        return value * float("nan") if rank == 1 and NaNOnRank1.calls >= 5 else value
