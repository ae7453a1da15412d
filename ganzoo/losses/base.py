"""The loss plugin contract: what every adversarial objective provides to the loop.

A plugin works on raw critic outputs ("logits": unbounded, shape (N,) or (N, 1)) and
returns batch-mean scalars that the respective player *minimises*. Argument order is
always real first. Only numerically stable forms are used (softplus / logsigmoid), with
the probability form written beside them.

    d_loss(real_logits, fake_logits)        critic objective                  (required)
    g_loss(real_logits, fake_logits)        generator objective               (required)
    divergence(real_logits, fake_logits)    what the current critic implies   (optional)
    after_d_step(D)                         constraint after each critic step (optional)

``g_loss`` receives real logits only when the class sets ``needs_real_logits = True``
(relativistic losses); otherwise ``real_logits`` is None and the loop skips the critic
pass on real data in the generator step. Penalties (gradient penalty, R1, R2) are not
part of a loss: they are their own plugins (``ganzoo.penalties``), added by the loop.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def flat(logits: Tensor) -> Tensor:
    """Accept (N,) or (N, 1) critic outputs; return (N,)."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    if logits.dim() != 1:
        raise ValueError(
            f"critic outputs must have shape (N,) or (N, 1), got {tuple(logits.shape)}")
    return logits


def at_least_fp32(x: Tensor) -> Tensor:
    """fp16/bf16 (autocast outputs) as fp32; fp32 and fp64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class GANLoss(nn.Module):
    """Base class of the loss plugins. Subclasses implement d_loss and g_loss."""

    #: True: g_loss needs the critic's logits on the real batch (relativistic losses).
    #: The loop then evaluates the current critic on the last critic step's real batch
    #: in the generator step (detached: the critic is frozen there).
    needs_real_logits: bool = False
    #: The divergence ``divergence()`` estimates (a ``ganzoo.theory.INTEGRANDS`` key, or
    #: "w1") and its constant: divergence() -> target_scale * D_target at the optimum.
    #: ``ganzoo.theory.reference_divergence`` computes the true value from densities.
    target: str | None = None
    target_scale: float = 1.0

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define d_loss")

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define g_loss")

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor | None:
        """The divergence between data and generator that the current critic implies;
        None (the default) when the loss does not say: no ``train/divergence`` is logged."""
        return None

    def after_d_step(self, D: nn.Module) -> None:
        """Constraint applied to the critic after each of its optimiser steps."""

    @property
    def divergence_hint(self) -> str | None:
        """What to try when this loss stops as non-finite; None when nothing specific."""
        return None
