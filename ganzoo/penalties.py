"""Critic penalties on samples: an axis of their own, composable with every loss.

    penalty=gp     Gulrajani et al. 2017 (WGAN-GP), Algorithm 1:
                   weight * E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z)
    penalty=r1     Mescheder et al. 2018, Eq. 9: weight / 2 * E_P[||grad_x D(x)||^2]
    penalty=r2     the same, zero-centred on generated samples: weight / 2 * E_Q[...]
    penalty=r1r2   both (Huang et al. 2024, R3GAN)

A penalty is called as ``penalty(D, real, fake)`` with the critic as a callable from
inputs to logits (labels bound for a conditional critic, whole packs for a packed one,
x -> D(T(x)) under an augmentation T, so that R1 is the gradient through T with respect
to the un-augmented input, as in DiffAugment's and ADA's code: ``ganzoo.augment``; the
loop prepares all three) and returns the weighted term added to the critic loss. The loop
owns the schedule: it applies the penalty every ``every`` critic steps and scales it by
``every`` (lazy regularisation, Karras et al. 2020, StyleGAN2 Sec. 3.1). Gradients are
taken per sample over its flattened input; norms are computed in fp32 under mixed
precision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganzoo.losses.base import at_least_fp32, flat

Critic = Callable[[Tensor], Tensor]


def input_gradient(D: Critic, x: Tensor) -> Tensor:
    """grad_x sum D(x), with a graph (the penalty is differentiated again), in fp32."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(at_least_fp32(flat(D(x))).sum(), x, create_graph=True)
    return at_least_fp32(grad).flatten(1)  # (N, features)


class Penalty(nn.Module):
    """Base class: ``weight`` scales the term, ``every`` is the loop's lazy interval."""

    def __init__(self, weight: float, every: int = 1) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"penalty.weight must be a number >= 0, got {weight!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"penalty.every must be an integer >= 1, got {every!r}")
        self.weight, self.every = float(weight), every

    def forward(self, D: Critic, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"weight={self.weight}, every={self.every}"


class GradientPenalty(Penalty):
    """Two-sided gradient penalty on random interpolates (Gulrajani et al. 2017)."""

    def forward(self, D: Critic, real: Tensor, fake: Tensor) -> Tensor:
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
        x_hat = eps * real + (1 - eps) * fake.detach()  # one eps per sample (or pack)
        norm = input_gradient(D, x_hat).norm(2, dim=1)  # (N,)
        return self.weight * ((norm - 1) ** 2).mean()


def _zero_centred(D: Critic, x: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] at the samples x."""
    return input_gradient(D, x).pow(2).sum(dim=1).mean()


class R1(Penalty):
    """Zero-centred gradient penalty on real data (Mescheder et al. 2018, Eq. 9)."""

    def forward(self, D: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * self.weight * _zero_centred(D, real)


class R2(Penalty):
    """Zero-centred gradient penalty on generated data (Mescheder et al. 2018, Eq. 10)."""

    def forward(self, D: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * self.weight * _zero_centred(D, fake)


class R1R2(Penalty):
    """R1 + R2 with one weight, as R3GAN (Huang et al. 2024) regularises its critic."""

    def forward(self, D: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * self.weight * (_zero_centred(D, real) + _zero_centred(D, fake))
