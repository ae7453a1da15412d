"""Pictures a person looks at first: samples over the data, with the critic behind them,
and grids of generated images large enough to read, each tile named by its label.

matplotlib is imported only when a picture is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.nets.layers import eval_mode


@torch.no_grad()
def _critic_on(D: nn.Module, x: Tensor) -> Tensor:
    with eval_mode(D):
        # A packed critic (PacGAN) is shown on packs of m copies of each point.
        critic = getattr(D, "pointwise", D)
        return torch.cat([critic(chunk) for chunk in x.split(8192)]).reshape(-1).float().cpu()


def critic_range(D: nn.Module, points: Tensor, quantile: float = 0.98) -> float:
    """Half-width of the heat map's symmetric colour range: the ``quantile`` of |V| on
    ``points`` (data and samples), so far corners of the grid, where an MLP critic grows
    without bound, do not wash out the region the samples live in."""
    device = next(D.parameters()).device
    v = _critic_on(D, points.detach().float().to(device)).abs()
    return max(float(torch.quantile(v, quantile)), 1e-6)


def plot_toy(path: str | Path, real: Tensor, fake: Tensor, D: nn.Module, title: str = "",
             density: Callable[[Tensor], Tensor] | None = None,
             vlim: float | None = None) -> float | None:
    """2-D: generated points over data, the critic's raw output V(x) (its logit, before
    any sigmoid) as a heat map in the symmetric range ±``vlim`` (default: from this
    picture, ``critic_range``); returns the range used, so a run can keep it for every
    later picture. 1-D: the picture of Goodfellow et al. 2014, Fig. 1: the data density
    (black, dotted; ``density`` maps points (N, 1) to p(x), else a histogram of
    ``real``), the generator's density (green histogram) and sigmoid(V(x)) (blue,
    dashed); returns None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, fake = real.detach().float().cpu(), fake.detach().float().cpu()
    fig, ax = plt.subplots(figsize=(6, 6) if real.shape[1] == 2 else (7, 4), dpi=110)
    if real.shape[1] == 2:
        vlim = critic_range(D, torch.cat([real, fake])) if vlim is None else vlim
        _plot_2d(fig, ax, real, fake, D, vlim)
    else:
        vlim = None
        _plot_1d(ax, real, fake, D, density)
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return vlim


def _plot_2d(fig, ax, real: Tensor, fake: Tensor, D: nn.Module, vlim: float) -> None:
    device = next(D.parameters()).device
    both = torch.cat([real, fake])
    lo = torch.quantile(both, 0.002, dim=0)
    hi = torch.quantile(both, 0.998, dim=0)
    pad = 0.15 * (hi - lo).max().clamp(min=0.5)
    lo, hi = real.min(0).values.minimum(lo) - pad, real.max(0).values.maximum(hi) + pad
    xs = torch.linspace(lo[0].item(), hi[0].item(), 200)
    ys = torch.linspace(lo[1].item(), hi[1].item(), 200)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    logits = _critic_on(D, grid.to(device)).reshape(200, 200).numpy()
    mesh = ax.pcolormesh(gx.numpy(), gy.numpy(), logits, cmap="coolwarm", shading="auto",
                         alpha=0.8, vmin=-vlim, vmax=vlim)
    if logits.min() < 0 < logits.max():  # where the critic changes its mind
        ax.contour(gx.numpy(), gy.numpy(), logits, levels=[0.0], colors="k",
                   linewidths=0.6, alpha=0.5)
    what = "V(x)" if not hasattr(D, "pointwise") else f"V(x, ..., x), {D.pack} copies"
    fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04, extend="both",
                 label=f"critic's raw output {what} (logit; range fixed for the run)")
    ax.scatter(real[:, 0].numpy(), real[:, 1].numpy(), s=4, c="k", alpha=0.3, label="data")
    ax.scatter(fake[:, 0].numpy(), fake[:, 1].numpy(), s=4, c="#f5b800", alpha=0.6,
               label="generated")
    ax.set_xlim(lo[0].item(), hi[0].item())
    ax.set_ylim(lo[1].item(), hi[1].item())
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_aspect("equal")


def _plot_1d(ax, real: Tensor, fake: Tensor, D: nn.Module,
             density: Callable[[Tensor], Tensor] | None) -> None:
    device = next(D.parameters()).device
    lo = min(real.min().item(), fake.min().item())
    hi = max(real.max().item(), fake.max().item())
    bins = torch.linspace(lo, hi, 121).numpy()
    xs = torch.linspace(lo, hi, 400)
    if density is not None:
        p = density(xs[:, None]).detach().float().cpu()
        ax.plot(xs.numpy(), p.numpy(), ":", color="k", lw=2, label="data density")
    else:
        ax.hist(real[:, 0].numpy(), bins=bins, density=True, histtype="step", ls=":",
                color="k", lw=2, label="data")
    ax.hist(fake[:, 0].numpy(), bins=bins, density=True, alpha=0.5, color="#2a9d8f",
            label="generated")
    critic = torch.sigmoid(_critic_on(D, xs[:, None].to(device)))
    ax2 = ax.twinx()
    ax2.plot(xs.numpy(), critic.numpy(), "--", color="#1f5fbf", lw=1.5,
             label="sigmoid(V(x)), V the critic's logit")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("sigmoid of the critic's raw output")
    ax2.legend(loc="upper left", fontsize=8)
    ax.set_ylabel("density")
    ax.set_xlabel("x")


def image_grid(images: Tensor, labels: Tensor | None = None, prefix: str = "",
               nrow: int = 8, tile: int = 64):
    """A PIL image of ``images`` (N, C, H, W) in [-1, 1], each upscaled (nearest
    neighbour, whole factors) to about ``tile`` pixels: a 16x16 digit at 1:1 is too
    small to read. With ``labels`` (a tensor (N,) or N strings), each tile carries
    ``prefix`` + its label."""
    import torch.nn.functional as F
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    x = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)  # (N, C, H, W) in [0, 1]
    scale = max(1, tile // max(x.shape[-2:]))
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="nearest")
    pad = 2
    grid = make_grid(x, nrow=nrow, padding=pad, pad_value=1.0)  # (3, H', W')
    picture = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
    if labels is not None:
        draw = ImageDraw.Draw(picture)
        h, w = x.shape[-2:]
        for i, label in enumerate(labels.tolist() if isinstance(labels, Tensor) else labels):
            left, top = pad + (i % nrow) * (w + pad), pad + (i // nrow) * (h + pad)
            text = f"{prefix}{label}"
            box = draw.textbbox((left + 2, top + 1), text)
            draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(0, 0, 0))
            draw.text((left + 2, top + 1), text, fill=(255, 220, 0))
    return picture
