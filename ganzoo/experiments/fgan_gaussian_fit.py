"""Nowozin et al. 2016, Sec. 4.1: fit one Gaussian to a mixture under each f-divergence.

The generator is G(z) = mu + sigma z (``model=gaussian``) and the critic an MLP; every
divergence is a full training run through ``train(cfg)``, in its own subdirectory of
the run directory. Beside each fitted (mu_hat, sigma_hat) this prints the divergence's
true optimum (mu*, sigma*) = argmin D_f(P || N(mu, sigma^2)), found by integrating the
closed-form integrand of ``ganzoo.theory`` on a grid: a grid search over (mu, log sigma)
first, because the mode-seeking divergences have a local minimum per mode, then L-BFGS.
``fits.png`` in the run directory draws every fit beside its optimum over the data
density, one panel per divergence (each run's own ``samples.png`` names its divergence
in the title).

    uv run train.py experiment=fgan_gaussian_fit
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ganzoo.theory import INTEGRANDS

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _mixture_log_prob(x: torch.Tensor, means, stds, weights) -> torch.Tensor:
    means, stds, w = (torch.as_tensor(a, dtype=torch.float64) for a in (means, stds, weights))
    z = (x[:, None] - means) / stds  # (N, M)
    log_comp = -0.5 * z**2 - torch.log(stds) - LOG_SQRT_2PI
    return torch.logsumexp(log_comp + torch.log(w / w.sum()), dim=1)


def best_fit(name: str, means: Sequence[float], stds: Sequence[float],
             weights: Sequence[float]) -> tuple[float, float, float]:
    """(mu*, sigma*, D*): the global minimiser of D_f(P || N(mu, sigma^2)) and its value."""
    lo, hi = min(means) - 4 * max(stds), max(means) + 4 * max(stds)
    span = hi - lo
    x, log_p = _grid(means, stds, weights)
    integrand = INTEGRANDS[name]

    def objective(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        # mu, log_sigma of shape (K,); returns D_f of shape (K,)
        z = (x[None, :] - mu[:, None]) / log_sigma.exp()[:, None]
        log_q = -0.5 * z**2 - log_sigma[:, None] - LOG_SQRT_2PI
        return torch.trapezoid(integrand(log_p[None, :], log_q), x, dim=1)

    mus = torch.linspace(lo, hi, 81, dtype=torch.float64)
    log_sigmas = torch.linspace(math.log(0.3 * min(stds)), math.log(span), 61,
                                dtype=torch.float64)
    m, s = torch.meshgrid(mus, log_sigmas, indexing="ij")
    values = torch.cat([objective(mc, sc) for mc, sc in
                        zip(m.flatten().split(2048), s.flatten().split(2048),
                            strict=True)])
    values = torch.nan_to_num(values, nan=math.inf)
    best = int(values.argmin())
    theta = torch.stack([m.flatten()[best], s.flatten()[best]]).requires_grad_(True)
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=200, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = objective(theta[:1], theta[1:])[0]
        value.backward()
        return value

    opt.step(closure)
    with torch.no_grad():
        value = objective(theta[:1], theta[1:])[0]
    return theta[0].item(), theta[1].exp().item(), value.item()


def exact_descent(name: str, means: Sequence[float], stds: Sequence[float],
                  weights: Sequence[float], mu: float = 0.0, sigma: float = 1.0,
                  steps: int = 1500, lr: float = 3e-2) -> tuple[float, float]:
    """Where plain gradient descent (Adam) on the exact, integrated D_f(P || N(mu, sigma^2))
    goes from (mu, sigma): the fixed point a perfectly trained critic would lead the
    generator to. When it differs from ``best_fit`` the start lies in a local basin."""
    x, log_p = _grid(means, stds, weights)
    integrand = INTEGRANDS[name]
    theta = torch.tensor([mu, math.log(sigma)], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    for _ in range(steps):
        z = (x - theta[0]) / theta[1].exp()
        log_q = -0.5 * z**2 - theta[1] - LOG_SQRT_2PI
        value = torch.trapezoid(integrand(log_p, log_q), x)
        opt.zero_grad()
        value.backward()
        opt.step()
    return theta[0].item(), theta[1].exp().item()


def _grid(means, stds, weights) -> tuple[torch.Tensor, torch.Tensor]:
    """Integration points covering the mixture generously, and log p on them."""
    lo, hi = min(means) - 4 * max(stds), max(means) + 4 * max(stds)
    span = hi - lo
    x = torch.linspace(lo - 2 * span, hi + 2 * span, 3001, dtype=torch.float64)
    return x, _mixture_log_prob(x, means, stds, weights)


def fitted_gaussian(ckpt: Path) -> tuple[float, float]:
    """(mu_hat, sigma_hat) read back from a run's last checkpoint."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return state["generator.mu"].item(), state["generator.log_sigma"].exp().item()


def _checkpoint_step(ckpt: Path) -> int | None:
    """The generator step a run's last checkpoint holds (None: no checkpoint)."""
    if not ckpt.is_file():
        return None
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["ganzoo"]["g_step"])


def run(cfg: DictConfig, train: Callable[[DictConfig], dict]) -> list[dict]:
    """Train once per divergence in ``cfg.fit.divergences``; write and print the table."""
    from ganzoo.config import ConfigError
    from ganzoo.gan import NonFiniteLossError
    from ganzoo.losses import F_DIVERGENCES

    out = Path(cfg.out_dir)
    names = list(cfg.fit.divergences)
    unknown = [n for n in names if n not in F_DIVERGENCES]
    if unknown or not names:
        raise ConfigError(f"fit.divergences: unknown or empty {unknown or names}; choose "
                          f"from {', '.join(F_DIVERGENCES)}")
    mixture = OmegaConf.to_container(cfg.data.distribution, resolve=True)
    means, stds = mixture["means"], mixture["stds"]
    weights = mixture.get("weights") or [1.0] * len(means)
    rows = []
    for name in names:
        sub = cfg.copy()
        sub.out_dir = str(out / name)
        sub.loss.divergence = name
        # A divergence whose critic blows up (Neyman chi^2 is infinite while the
        # generator is wider than the data's modes) gets its row, read from the last
        # finite checkpoint, and the others still run.
        try:
            metrics = train(sub)
        except NonFiniteLossError as exc:
            metrics = {"status": "diverged", "reason": str(exc)}
        ckpt = out / name / "checkpoints" / "last.ckpt"
        mu_hat, sigma_hat = fitted_gaussian(ckpt) if ckpt.is_file() else (math.nan, math.nan)
        mu_star, sigma_star, d_star = best_fit(name, means, stds, weights)
        rows.append({"divergence": name, "mu_hat": mu_hat, "sigma_hat": sigma_hat,
                     "mu_star": mu_star, "sigma_star": sigma_star, "d_star": d_star,
                     "status": metrics.get("status", "completed"),
                     "fit_step": _checkpoint_step(ckpt),
                     "wall_time_s": metrics.get("wall_time_s")})
    with open(out / "fit.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "fit.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot_fits(out / "fits.png", rows, means, stds, weights, cfg.steps)
    print(format_table(rows, means, stds, weights, cfg.steps))
    print(f"\nfits: {out / 'fits.png'}")
    return rows


def plot_fits(path: Path, rows: list[dict], means, stds, weights, steps: int) -> None:
    """All fits in one figure: per divergence (a panel named after it) the data density,
    the fitted N(mu_hat, sigma_hat^2) and the optimum N(mu*, sigma*^2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = min(means) - 4 * max(stds), max(means) + 4 * max(stds)
    x = torch.linspace(lo, hi, 400, dtype=torch.float64)
    p = _mixture_log_prob(x, means, stds, weights).exp()
    cols = min(4, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), dpi=110,
                             sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows, strict=False):
        ax.plot(x.numpy(), p.numpy(), color="k", lw=1.5, label="data p(x)")
        for mu, sigma, style, label in ((r["mu_star"], r["sigma_star"], "--", "optimum"),
                                        (r["mu_hat"], r["sigma_hat"], "-", "fit")):
            if math.isfinite(mu) and math.isfinite(sigma):
                q = torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
                ax.plot(x.numpy(), q.numpy(), style, lw=1.5, label=label,
                        color="#2a9d8f" if label == "fit" else "#e76f51")
        fit = (f"fit N({r['mu_hat']:.2f}, {r['sigma_hat']:.2f}²)"
               if math.isfinite(r["mu_hat"]) else "no fit")
        status = "" if r["status"] == "completed" else f", {r['status']}"
        ax.set_title(f"{r['divergence']}: {fit}{status}", fontsize=9)
        ax.set_xlabel("x")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"f-GAN Gaussian fits (Nowozin et al. 2016, Sec. 4.1) · {steps} generator "
                 "steps · dashed: argmin D_f", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_table(rows: list[dict], means, stds, weights, steps: int) -> str:
    mix = " + ".join(f"{w:g} N({m:g}, {s:g}^2)" for m, s, w in zip(means, stds, weights,
                                                                    strict=True))
    lines = [f"\nf-GAN Gaussian fit (Nowozin et al. 2016, Sec. 4.1) · P = {mix} · "
             f"{steps} generator steps",
             f"  {'divergence':<18} {'mu_hat':>8} {'sigma_hat':>9} {'mu*':>8} {'sigma*':>8}"
             f" {'|dmu|':>7} {'|dsigma|':>8}"]
    for r in rows:
        line = (f"  {r['divergence']:<18} {r['mu_hat']:8.3f} {r['sigma_hat']:9.3f} "
                f"{r['mu_star']:8.3f} {r['sigma_star']:8.3f} "
                f"{abs(r['mu_hat'] - r['mu_star']):7.3f} "
                f"{abs(r['sigma_hat'] - r['sigma_star']):8.3f}")
        if r["status"] != "completed":
            line += (f"  {r['status']}; fit from step {r['fit_step']}"
                     if r.get("fit_step") is not None else f"  {r['status']}; no fit")
        lines.append(line)
    return "\n".join(lines)
