"""The non-finite guard: notices when a loss stops being finite, or runs away (its magnitude
beyond ``loss_limit``, default 1e8: far outside any loss's working range, where a blown-up
critic's outputs are heading for fp32 overflow), without a host sync per step.

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
from ganzoo.errors import NonFiniteLossError  # noqa: F401  (defined without torch)

GUARDED = ("train/d_loss", "train/g_loss")


class NonFiniteGuard:
    def __init__(self, mode: str = "stop", limit: float | None = 1e8) -> None:
        if mode not in ("stop", "skip"):
            raise ValueError(f"nonfinite must be 'stop' or 'skip', got {mode!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                                  or not limit > 0):
            raise ValueError(f"loss_limit must be a positive number or null, got {limit!r}")
        self.mode = mode
        self.limit = float("inf") if limit is None else float(limit)
        self.skipped = 0  # updates skipped (skip mode)
        # Per guarded loss, the first generator step at which it was not finite, then the
        # first at which it ran away (-1: none); on the loss's device, read by check().
        self.first_bad: Tensor | None = None
        self._watched: list[tuple[int, int, Tensor]] = []  # (loss, step, value) unchecked

    def skip(self, loss: Tensor, what: str, g_step: int) -> bool:
        """Watch ``loss`` of the update leading to generator step ``g_step``; True means:
        skip this update."""
        if self.mode == "skip":
            bad = not torch.isfinite(loss) or loss.abs() > self.limit
            if not distributed.any_rank(bad, loss.device):
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
        n = len(GUARDED)
        if self.first_bad is None or self.first_bad.device != device:
            self.first_bad = torch.full((2 * n,), -1, dtype=torch.long, device=device)
        first = self.first_bad
        which = torch.tensor([w[0] for w in self._watched], device=device)
        steps = torch.tensor([w[1] for w in self._watched], device=device)
        values = torch.stack([w[2].float() for w in self._watched])
        kinds = (~torch.isfinite(values), values.abs() > self.limit)  # nan/inf, runaway
        never = torch.iinfo(steps.dtype).max
        for k, bad in enumerate(kinds):
            for i in range(n):
                step = torch.where(bad & (which == i), steps, never).min()
                j = k * n + i
                first[j] = torch.where((first[j] < 0) & (step < never), step, first[j])
        self._watched.clear()

    def check(self, device: torch.device) -> None:
        """Raise NonFiniteLossError if a loss has stopped being finite (stop mode); under
        DDP every rank stops at the same check."""
        if self.mode != "stop":
            return
        self._fold()
        n = len(GUARDED)
        steps = (self.first_bad if self.first_bad is not None
                 else torch.full((2 * n,), -1, dtype=torch.long, device=device))
        if distributed.world()[1] > 1:
            never = torch.iinfo(steps.dtype).max
            steps = torch.where(steps < 0, never, steps)
            torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MIN)
            steps = torch.where(steps == never, -1, steps)
        what = [f"{name} became nan or inf" for name in GUARDED] + [
            f"{name} ran away (its magnitude passed loss_limit={self.limit:g})"
            for name in GUARDED]
        bad = [(step, i) for i, step in enumerate(steps.tolist()) if step >= 0]
        if bad:
            step, i = min(bad)
            raise NonFiniteLossError(f"{what[i]} at generator step {step}")
