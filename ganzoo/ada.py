"""Adaptive augmentation strength: the controller of ADA (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data", Sec. 3), over DiffAugment's ops.

    augment=ada   each of DiffAugment's elementary ops (``ganzoo.augment``: brightness,
                  saturation, contrast from ``color``, then translation, cutout; those of
                  ``augment.policy``) is applied to each sample independently with
                  probability p, to real and generated critic inputs alike, in both steps.

p starts at ``augment.p`` (0) and follows the overfitting heuristic r_t = E[sign(D(T(x)))]
on the augmented reals of the critic steps: every ``augment.interval`` critic steps (4),
p moves by sign(r_t - target) * (images judged in the interval) / (kimg * 1000), kept in
[0, 1]: with target 0.6 and kimg 500 (ADA's defaults) p can go from 0 to 1 in 500k real
images. Under DDP the signs are summed over all ranks before r_t is formed, and the images
are those of the global batch, so every rank holds the same p.

What this is and is not. The controller is ADA's. The ops are not ADA's pipeline: ADA
applies up to 18 transformations (x-flips, 90-degree rotations, integer and fractional
translation, isotropic and anisotropic scaling, rotations, brightness, contrast, luma flip,
hue rotation, saturation, frequency-band filtering, additive noise, cutout) with its own
parameter distributions and reflection padding; here are DiffAugment's five (a subset of
ADA's kinds of op, with DiffAugment's definitions and zero padding). The geometric ops
that need resampling are what ADA's pipeline adds beyond them.

State: p (as an integer count of images out of kimg * 1000, so no precision setting can
round it), the signs and logits counted since the last adjustment, and the last r_t are
buffers of the module, so checkpoints keep them and a resumed run adapts as the
uninterrupted one would; the step at which p moves is the loop's critic step counter.
Penalties see x -> D(T(x)) as for DiffAugment (``ganzoo.augment``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ganzoo import distributed
from ganzoo.augment import OPS, DiffAugment, _like, check_images, uniform
from ganzoo.config import ConfigError, require_int


class ADA(DiffAugment):
    """DiffAugment's ops, each applied per sample with probability p, p adapted to
    r_t = E[sign(D(T(x_real)))] (Karras et al. 2020)."""

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout",
                 target: float = 0.6, interval: int = 4, kimg: float = 500,
                 p: float = 0.0) -> None:
        super().__init__(policy)
        _number("augment.target", target, lambda v: 0 < v < 1, "a number in (0, 1)")
        self.interval = require_int("augment.interval", interval, 1)
        _number("augment.kimg", kimg, lambda v: v > 0, "a positive number")
        _number("augment.p", p, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        self.target = float(target)
        self.span = max(1, round(kimg * 1000))  # real images over which p can move by 1
        int64 = dict(dtype=torch.int64)
        self.register_buffer("p_images", torch.tensor(round(p * self.span), **int64))
        self.register_buffer("signs", torch.zeros((), **int64))  # sum of sign(D) so far
        self.register_buffer("judged", torch.zeros((), **int64))  # logits counted so far
        self.register_buffer("rt", torch.zeros(()))  # r_t of the last interval

    @property
    def p(self) -> Tensor:
        """The probability each op is applied with (a 0-d tensor on the module's device)."""
        return self.p_images.float() / self.span

    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W) -> (N, C, H, W)
        check_images(x)
        p, out = self.p, x
        for name in self.ops:
            draw, apply = OPS[name]
            params = draw(out)  # drawn for every sample, applied to those chosen
            chosen = uniform(out, 0.0, 1.0, torch.float32) < p  # (N,)
            out = torch.where(chosen[:, None, None, None], apply(out, *params), out)
        return _like(out, x)

    @torch.no_grad()
    def observe(self, real_logits: Tensor, n: int, step: int) -> None:
        """Count the signs of this critic step's logits on its n augmented reals; ``step``
        is the number of critic steps done, this one included: every ``interval``-th moves
        p (on the device, no host synchronisation)."""
        self.signs += real_logits.sign().sum().long()
        self.judged += real_logits.numel()
        if step % self.interval:
            return
        counts = distributed.sum_over_ranks(torch.stack([self.signs, self.judged]))
        rt = counts[0].float() / counts[1].clamp_min(1).float()
        images = n * distributed.world()[1] * self.interval  # the global batches judged
        step_p = torch.sign(rt - self.target).long() * images
        self.p_images.copy_((self.p_images + step_p).clamp(0, self.span))
        self.rt.copy_(rt)
        self.signs.zero_()
        self.judged.zero_()

    def figures(self) -> dict[str, Tensor]:
        return {"train/augment_p": self.p, "train/augment_rt": self.rt}

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, target={self.target}, interval={self.interval}, "
                f"kimg={self.span / 1000:g}")


def _number(key: str, value, ok: Callable[[float], bool], what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ConfigError(f"{key} must be {what}, got {value!r}")
