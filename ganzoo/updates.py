"""How the loop updates a player: the idle network frozen, then zero_grad, backward, step.

``Updates`` is a mixin of ``ganzoo.gan.GAN``. Each update goes through Lightning's
``manual_backward`` and ``LightningOptimizer.step`` (precision plugins, DDP, the
backward and optimizer-step hooks of callbacks and of the module, the profiler) unless
none of that applies to the run: one device, 32-bit precision, no profiler, and no
callback or module method that overrides a hook those calls dispatch. Then the update
calls ``loss.backward()`` and the optimiser's ``step()`` itself, keeping Lightning's step
counters (``trainer.global_step``) as ``LightningOptimizer.step`` keeps them: the same
arithmetic, without the dispatch of hooks and plugins around every update.

It also decides the run's *blocks*: on one device, a datamodule that serves its stream
in ``Block``s (``ganzoo.data.streams``) hands ``training_step`` that many consecutive
batches at once, and ``train_block`` trains on them in turn, so Lightning's per-batch
loop (fetching, hooks, bookkeeping) runs once per block rather than once per update. A
block ends on every generator step that a callback or the loop acts on (logging,
evaluation, checkpoints, the run's end: ``block_steps`` divides each interval), and the
updates are the same updates in the same order, so nothing a run computes changes.
"""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import Tensor, nn

from ganzoo.config import ConfigError, check_block_steps
from ganzoo.data.streams import Block

# What manual_backward and LightningOptimizer.step dispatch to, besides the arithmetic.
CALLBACK_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
MODULE_HOOKS = (*CALLBACK_HOOKS, "backward", "manual_backward")


def direct_updates(module: L.LightningModule, trainer: L.Trainer) -> bool:
    """Whether ``module``'s updates may skip Lightning's dispatch: nothing it does applies."""
    if (type(trainer.strategy) is not SingleDeviceStrategy
            or type(trainer.precision_plugin) is not Precision
            or not isinstance(trainer.profiler, PassThroughProfiler)):
        return False
    for cb in trainer.callbacks:
        if any(getattr(type(cb), h) is not getattr(L.Callback, h) for h in CALLBACK_HOOKS):
            return False
    return all(getattr(type(module), h) is getattr(L.LightningModule, h) for h in MODULE_HOOKS)


# Per-batch hooks a callback may have that blocks hide from it (it sees the last batch).
BATCH_HOOKS = ("on_train_batch_start", "on_train_batch_end")
MAX_BLOCK = 50  # block_steps=auto: at most this many generator steps per block


def foreign_batch_hooks(module: L.LightningModule, trainer: L.Trainer) -> list[str]:
    """What acts on every batch without knowing of blocks: callbacks and module methods
    overriding a per-batch hook, unless the callback says it acts only on the generator
    steps of its ``every`` (``block_aware = True``), or is a ModelCheckpoint that saves on
    evaluations only."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    found = []
    for cb in trainer.callbacks:
        # (ModelCheckpoint's private settings; unknown to another Lightning: per batch)
        if getattr(cb, "block_aware", False) or (
                type(cb) is ModelCheckpoint and getattr(cb, "_every_n_train_steps", 1) == 0
                and getattr(cb, "_train_time_interval", 0) is None):
            continue
        if any(getattr(type(cb), h) is not getattr(L.Callback, h) for h in BATCH_HOOKS):
            found.append(type(cb).__name__)
    found += [f"{type(module).__name__}.{h}" for h in BATCH_HOOKS
              if getattr(type(module), h) is not getattr(L.LightningModule, h)]
    return found


def block_steps(module: L.LightningModule, trainer: L.Trainer, requested) -> int:
    """Generator steps per block for this run: ``requested`` (``block_steps``: a number,
    or auto, the largest number up to MAX_BLOCK that divides every interval), 1 where
    blocks cannot be exact."""
    intervals = [("log_every", module.log_every), ("steps", module.total_steps or 0)]
    intervals += [(getattr(cb, "every_key", type(cb).__name__), cb.every)  # its multiples
                  for cb in trainer.callbacks
                  if getattr(cb, "block_aware", False) and getattr(cb, "every", 0)]
    single = type(trainer.strategy) is SingleDeviceStrategy
    foreign = foreign_batch_hooks(module, trainer)
    if requested == "auto":
        if not single or foreign:
            return 1
        common = math.gcd(*(every for _, every in intervals))
        return max(d for d in range(1, min(common, MAX_BLOCK) + 1) if common % d == 0)
    if requested > 1 and not single:
        raise ConfigError(f"block_steps={requested} needs a single device (this run uses "
                          f"{type(trainer.strategy).__name__}); use block_steps=auto")
    if requested > 1 and foreign:
        raise ConfigError(f"block_steps={requested}: {', '.join(foreign)} acts on every "
                          f"batch, which blocks would hide; use block_steps=auto or 1")
    check_block_steps(requested, intervals)
    return requested


class Updates:
    """Freezing the idle player and updating the active one (see the module docstring)."""

    _trainable: tuple[list[nn.Parameter], list[nn.Parameter]] | None = None
    _direct = False

    def start_updates(self) -> None:
        """At the start of each fit: decide the update path; take the trainable
        parameters anew."""
        self._trainable = None
        self._direct = direct_updates(self, self.trainer)

    def train_block(self, block: Block, batch_idx: int) -> None:
        """One block: its batches in turn, as one training_step each; it stops early,
        after a generator update, when training is to stop (the run's end, a signal)."""
        for batch in block:
            self.training_step(batch, batch_idx)
            if self.trainer.should_stop and self.generator_updated:
                return

    def players(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """The parameters G and D train (any the user froze stay frozen)."""
        if self._trainable is None:
            self._trainable = tuple([p for p in net.parameters() if p.requires_grad]
                                    for net in (self.generator, self.discriminator))
        return self._trainable

    @staticmethod
    def set_trainable(params: list[nn.Parameter], trainable: bool) -> None:
        """Stop (or resume) gradients into one player's parameters, so that none flows
        into the idle network: the flags alone (Lightning's toggle_optimizer sets the same
        through every optimiser's parameter groups, with a saved state per call)."""
        for p in params:
            p.requires_grad_(trainable)

    def step_player(self, optimizer, loss: Tensor) -> None:
        """zero_grad, backward and step of one player (``optimizer``: Lightning's wrapper)."""
        optimizer.zero_grad(set_to_none=True)
        if not self._direct:
            self.manual_backward(loss)
            optimizer.step()
            return
        loss.backward()
        optimizer._on_before_step()  # Lightning's step counters, as its step() keeps them
        optimizer.optimizer.step()
        optimizer._on_after_step()
