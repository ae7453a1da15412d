"""The non-finite guard: notices when a loss stops being finite, without a host sync per step.

``nonfinite=stop`` (default) remembers each guarded loss and checks a batch of them at
once (a few tensor operations per log interval instead of several per update); the loop
asks ``check()`` before logging, evaluating and checkpointing, so nothing diverged is ever
logged as good or written over a finite checkpoint. ``nonfinite=skip`` checks every update
(one host sync each: the price of skipping it), and every DDP rank skips together.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganzoo import distributed

GUARDED = ("train/d_loss", "train/g_loss")


class NonFiniteLossError(RuntimeError):
    """Raised when a loss or critic output stops being finite."""


class NonFiniteGuard:
    def __init__(self, mode: str = "stop") -> None:
        if mode not in ("stop", "skip"):
            raise ValueError(f"nonfinite must be 'stop' or 'skip', got {mode!r}")
        self.mode = mode
        self.skipped = 0  # updates skipped (skip mode)
        # Per guarded loss, the first generator step at which it was not finite (-1: none);
        # kept on the loss's device, read only by check().
        self.first_bad: Tensor | None = None
        self._watched: list[tuple[int, int, Tensor]] = []  # (loss, step, value) unchecked

    def skip(self, loss: Tensor, what: str, g_step: int) -> bool:
        """Watch ``loss`` of the update leading to generator step ``g_step``; True means:
        skip this update."""
        if self.mode == "skip":
            if not distributed.any_rank(not torch.isfinite(loss), loss.device):
                return False
            self.skipped += 1
            return True
        self._watched.append((GUARDED.index(what), g_step, loss.detach()))
        if len(self._watched) >= 1024:
            self._fold()
        return False

    def _fold(self) -> None:
        """Record in first_bad the first step whose watched loss is not finite, on the
        device (no host synchronisation)."""
        if not self._watched:
            return
        device = self._watched[0][2].device
        if self.first_bad is None or self.first_bad.device != device:
            self.first_bad = torch.full((len(GUARDED),), -1, dtype=torch.long, device=device)
        first = self.first_bad
        which = torch.tensor([w[0] for w in self._watched], device=device)
        steps = torch.tensor([w[1] for w in self._watched], device=device)
        bad = ~torch.isfinite(torch.stack([w[2].float() for w in self._watched]))
        never = torch.iinfo(steps.dtype).max
        for i in range(len(GUARDED)):
            step = torch.where(bad & (which == i), steps, never).min()
            first[i] = torch.where((first[i] < 0) & (step < never), step, first[i])
        self._watched.clear()

    def check(self, device: torch.device) -> None:
        """Raise NonFiniteLossError if a loss has stopped being finite (stop mode); under
        DDP every rank stops at the same check."""
        if self.mode != "stop":
            return
        self._fold()
        steps = (self.first_bad if self.first_bad is not None
                 else torch.full((len(GUARDED),), -1, dtype=torch.long, device=device))
        if distributed.world()[1] > 1:
            never = torch.iinfo(steps.dtype).max
            steps = torch.where(steps < 0, never, steps)
            torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MIN)
            steps = torch.where(steps == never, -1, steps)
        bad = [(step, name) for step, name in zip(steps.tolist(), GUARDED, strict=True)
               if step >= 0]
        if bad:
            step, name = min(bad)
            raise NonFiniteLossError(f"{name} became nan or inf at generator step {step}")
