"""How the loop updates a player: the idle network frozen, then zero_grad, backward, step.

``Updates`` is a mixin of ``ganzoo.gan.GAN``. Each update goes through Lightning's
``manual_backward`` and ``LightningOptimizer.step`` (precision plugins, DDP, the
backward and optimizer-step hooks of callbacks and of the module, the profiler) unless
none of that applies to the run: one device, 32-bit precision, no profiler, and no
callback or module method that overrides a hook those calls dispatch. Then the update
calls ``loss.backward()`` and the optimiser's ``step()`` itself, keeping Lightning's step
counters (``trainer.global_step``) as ``LightningOptimizer.step`` keeps them: the same
arithmetic, without the dispatch of hooks and plugins around every update.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import Tensor, nn

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


class Updates:
    """Freezing the idle player and updating the active one (see the module docstring)."""

    _trainable: tuple[list[nn.Parameter], list[nn.Parameter]] | None = None
    _direct = False

    def start_updates(self) -> None:
        """At the start of each fit: decide the update path; take the trainable
        parameters anew."""
        self._trainable = None
        self._direct = direct_updates(self, self.trainer)

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
