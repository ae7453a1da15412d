"""Differentiable augmentation of the critic's inputs (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training", DiffAugment).

    augment=diffaug   every critic input goes through a random transformation T: real and
                      generated alike (one distribution of T for both), in the critic step
                      and in the generator step, D(T(x)) and D(T(G(z))); every op is
                      differentiable in its input, so the generator is trained through T.

``augment.policy`` names the paper's op groups, combinable (a comma-separated string or a
list); the default, all three, is the paper's policy for data-limited training. Applied in
this order, to images (N, C, H, W) in [-1, 1]:

    color        brightness  x + b                                  b ~ U(-0.5, 0.5)
                 saturation  m_px + s (x - m_px), m_px each pixel's channel mean  s ~ U(0, 2)
                 contrast    m + c (x - m), m the image's mean             c ~ U(0.5, 1.5)
    translation  out[i, j] = x[i + t_h, j + t_w], zero outside the image;
                 t_h, t_w integers ~ U{-r, ..., r}, r = round(size / 8) per axis
    cutout       a square of half the image size (round(size / 2) per axis) set to 0,
                 centred at a uniform position, clipped at the image's borders

(saturation leaves a one-channel image unchanged, as in DiffAugment.) Every sample draws
its own parameters, from torch's global random stream: checkpoints keep its state
(``ganzoo.checkpoint.ResumeState``), so a resumed run draws what the uninterrupted run
would have. Under DDP every rank draws the parameters of the global batch and keeps its
slice, as ``training_noise`` draws z, so N ranks augment as one process would.

Penalties see the augmented critic. In DiffAugment's and ADA's code the critic judges T(x)
and R1 is the gradient of D(T(x)) with respect to the un-augmented input x, through T; so
the loop hands a penalty the critic x -> D(T(x)) (``GAN.penalty_view``): R1 and R2 are
E||grad_x D(T(x))||^2 at real (generated) x, and WGAN-GP's interpolates are formed
between un-augmented samples and then go through T. T draws afresh in each call.

Why the ops are written here: torchvision's tensor transforms draw one parameter per call
(one per batch, not per sample) and define brightness as a factor, saturation as a blend
with the luma-weighted grey image and contrast as a blend with that image's mean;
kornia.augmentation's ColorJitter follows torchvision's definitions, ColorJiggle scales
contrast about zero and saturation in HSV space, its RandomAffine resamples continuous
shifts and RandomErasing keeps the erased box inside the image. None gives DiffAugment's
definitions, which take a few tensor lines each below (after its PyTorch reference code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo import distributed

# The policy's op groups and the elementary ops each chains, in DiffAugment's order.
POLICIES = {"color": ("brightness", "saturation", "contrast"),
            "translation": ("translation",), "cutout": ("cutout",)}


def uniform(x: Tensor, low: float, high: float, dtype: torch.dtype | None = None) -> Tensor:
    """One draw of U(low, high) per sample of x (N,), this rank's slice of the global batch."""
    u = distributed.draw_global(
        lambda n: torch.rand(n, device=x.device, dtype=dtype or x.dtype), x.shape[0])
    return low + (high - low) * u


def integers(x: Tensor, low: int, high: int) -> Tensor:
    """One integer of U{low, ..., high} per sample of x (N,)."""
    return distributed.draw_global(
        lambda n: torch.randint(low, high + 1, (n,), device=x.device), x.shape[0])


def _per_image(t: Tensor) -> Tensor:
    return t.view(-1, 1, 1, 1)  # (N,) -> (N, 1, 1, 1)


# --- the ops, given their per-sample parameters (N,) ------------------------------------

def brightness(x: Tensor, b: Tensor) -> Tensor:
    return x + _per_image(b)


def saturation(x: Tensor, s: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)  # (N, 1, H, W): each pixel's channel mean
    return (x - mean) * _per_image(s) + mean


def contrast(x: Tensor, c: Tensor) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1): each image's mean
    return (x - mean) * _per_image(c) + mean


def translate(x: Tensor, t_h: Tensor, t_w: Tensor) -> Tensor:
    """out[n, :, i, j] = x[n, :, i + t_h[n], j + t_w[n]], 0 where that lies outside."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))  # (N, C, H + 2, W + 2): a border of zeros
    # Indices into the padded image; a shift past the border reads the zero border.
    rows = (torch.arange(h, device=x.device) + t_h[:, None] + 1).clamp(0, h + 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) + t_w[:, None] + 1).clamp(0, w + 1)  # (N, W)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2))  # (N, C, H, W+2)
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))  # (N, C, H, W)


def cutout_size(h: int, w: int) -> tuple[int, int]:
    return int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)


def cutout(x: Tensor, c_h: Tensor, c_w: Tensor) -> Tensor:
    """x with rows c_h - s_h // 2 ... c_h - s_h // 2 + s_h - 1 of columns likewise set to 0
    (s_h, s_w = cutout_size), the part inside the image."""
    _, _, h, w = x.shape
    s_h, s_w = cutout_size(h, w)
    rows = torch.arange(h, device=x.device) - (c_h[:, None] - s_h // 2)  # (N, H)
    cols = torch.arange(w, device=x.device) - (c_w[:, None] - s_w // 2)  # (N, W)
    inside = (((rows >= 0) & (rows < s_h))[:, :, None]
              & ((cols >= 0) & (cols < s_w))[:, None, :])  # (N, H, W)
    return x * (~inside).to(x.dtype)[:, None]


# --- their random parameters ------------------------------------------------------------

def _shifts(x: Tensor) -> tuple[Tensor, Tensor]:
    _, _, h, w = x.shape
    r_h, r_w = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    return integers(x, -r_h, r_h), integers(x, -r_w, r_w)


def _centres(x: Tensor) -> tuple[Tensor, Tensor]:
    _, _, h, w = x.shape
    s_h, s_w = cutout_size(h, w)
    # An even square may be centred on the far border too (DiffAugment's range).
    return integers(x, 0, h - s_h % 2), integers(x, 0, w - s_w % 2)


Op = tuple[Callable[[Tensor], tuple[Tensor, ...]], Callable[..., Tensor]]
OPS: dict[str, Op] = {  # name: (draw its parameters for x, apply them)
    "brightness": (lambda x: (uniform(x, -0.5, 0.5),), brightness),
    "saturation": (lambda x: (uniform(x, 0.0, 2.0),), saturation),
    "contrast": (lambda x: (uniform(x, 0.5, 1.5),), contrast),
    "translation": (_shifts, translate),
    "cutout": (_centres, cutout),
}


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """``"color,translation"`` or ``["color", "translation"]`` -> the policy's op groups."""
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [str(name).strip() for name in names if str(name).strip()]
    allowed = ", ".join(POLICIES)
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"augment.policy: unknown op {unknown[0]!r}; choose from {allowed}")
    if not names:
        raise ValueError(f"augment.policy must name one or more of {allowed} (or use "
                         f"augment=none), got {policy!r}")
    return tuple(names)


def check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError("augment: the augmentation acts on image batches (N, C, H, W), got "
                         f"shape {tuple(x.shape)}")


class DiffAugment(nn.Module):
    """T(x) of DiffAugment (Zhao et al. 2020) for the policy's op groups, fresh per call."""

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout") -> None:
        super().__init__()
        self.policy = parse_policy(policy)
        self.ops = tuple(op for group in self.policy for op in POLICIES[group])

    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W) -> (N, C, H, W)
        check_images(x)
        out = x
        for name in self.ops:
            draw, apply = OPS[name]
            out = apply(out, *draw(out))
        return _like(out, x)

    def observe(self, real_logits: Tensor, n: int, step: int) -> None:
        """The critic's logits on critic step ``step``'s n augmented reals (what ADA,
        ``ganzoo.ada``, adapts to; a fixed augmentation ignores them)."""

    def figures(self) -> dict[str, Tensor]:
        """Figures logged with the training figures (none for a fixed augmentation)."""
        return {}

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"


def _like(out: Tensor, x: Tensor) -> Tensor:
    """out in x's memory format (the gathers make it contiguous; a channels_last batch
    stays channels_last)."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return out.contiguous(memory_format=torch.channels_last)
    return out
