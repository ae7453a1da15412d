"""Closed-form divergences, written from their definitions, independently of the plugins.

Each GAN objective, with its critic at the optimum, equals a divergence between the data
P and the generator Q (Goodfellow et al. 2014, Thm. 1; Nowozin et al. 2016, Table 1;
Arjovsky et al. 2017, Eq. 3). This module computes those divergences directly from
densities, so tests can hold the plugins to them and training can log the truth beside
the critic's estimate:

    INTEGRANDS[name](log_p, log_q)  the pointwise q f(p/q) of Nowozin's Table 1, from logs
    f_divergence(name, p, q)        sum_x q f(p/q) for discrete distributions
    js(p, q)                        Jensen-Shannon divergence in nats
    w1_1d(x, p, q)                  W1 on the real line, the integral of |F_P - F_Q|
    reference_divergence(...)       what a loss's ``divergence()`` should read, on toy data

Every integrand is the *perspective* q f(p/q) written in p and q (with its limits where
p or q is zero), so partly disjoint supports are exact rather than 0 * inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

LOG2 = math.log(2.0)


def _pq(log_p: Tensor, log_q: Tensor) -> tuple[Tensor, Tensor]:
    return log_p.exp(), log_q.exp()


def _kl(lp: Tensor, lq: Tensor) -> Tensor:  # p log(p/q)
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lq), torch.zeros_like(p))


def _reverse_kl(lp: Tensor, lq: Tensor) -> Tensor:  # q log(q/p)
    return _kl(lq, lp)


def _pearson(lp: Tensor, lq: Tensor) -> Tensor:  # (p - q)^2 / q
    p, q = _pq(lp, lq)
    return (p - q) ** 2 / q


def _neyman(lp: Tensor, lq: Tensor) -> Tensor:  # (p - q)^2 / p
    return _pearson(lq, lp)


def _squared_hellinger(lp: Tensor, lq: Tensor) -> Tensor:  # (sqrt p - sqrt q)^2
    return (torch.exp(0.5 * lp) - torch.exp(0.5 * lq)) ** 2


def _gan(lp: Tensor, lq: Tensor) -> Tensor:  # p log(p/(p+q)) + q log(q/(p+q))
    lm = torch.logaddexp(lp, lq)
    return _kl(lp, lm) + _kl(lq, lm)


def _js2(lp: Tensor, lq: Tensor) -> Tensor:  # p log(2p/(p+q)) + q log(2q/(p+q)) = 2 JS
    lm = torch.logaddexp(lp, lq) - LOG2
    return _kl(lp, lm) + _kl(lq, lm)


def _total_variation(lp: Tensor, lq: Tensor) -> Tensor:  # |p - q| / 2
    p, q = _pq(lp, lq)
    return 0.5 * (p - q).abs()


#: q f(p/q) for each f of Nowozin et al. 2016, Table 1 (``js`` integrates to 2 JS and
#: ``gan`` to 2 JS - log 4, as the f listed there).
INTEGRANDS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "kl": _kl,
    "reverse_kl": _reverse_kl,
    "pearson": _pearson,
    "neyman": _neyman,
    "squared_hellinger": _squared_hellinger,
    "js": _js2,
    "gan": _gan,
    "total_variation": _total_variation,
}

#: The optimal f-GAN critic T*(x) = f'(p/q), written per divergence (Nowozin et al. 2016,
#: Sec. 2.3), as a function of the ratio u = p/q.
OPTIMAL_CRITIC: dict[str, Callable[[Tensor], Tensor]] = {
    "kl": lambda u: 1 + torch.log(u),
    "reverse_kl": lambda u: -1 / u,
    "pearson": lambda u: 2 * (u - 1),
    "neyman": lambda u: 1 - u**-2,
    "squared_hellinger": lambda u: 1 - u**-0.5,
    "js": lambda u: LOG2 + torch.log(u) - torch.log1p(u),
    "gan": lambda u: torch.log(u) - torch.log1p(u),
    "total_variation": lambda u: 0.5 * torch.sign(u - 1),
}


def _logs(p: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    return p.log(), q.log()  # log 0 = -inf is what the integrands expect


def f_divergence(name: str, p: Tensor, q: Tensor) -> Tensor:
    """D_f(P||Q) = sum_x q(x) f(p(x)/q(x)) for probability vectors p, q (float64)."""
    return INTEGRANDS[name](*_logs(p, q)).sum()


def js(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence in nats: (KL(P||M) + KL(Q||M)) / 2, M = (P + Q) / 2."""
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    m = 0.5 * (p + q)
    return 0.5 * (_kl(p.log(), m.log()).sum() + _kl(q.log(), m.log()).sum())


def w1_1d(x: Tensor, p: Tensor, q: Tensor) -> Tensor:
    """W1 between discrete P, Q on sorted points x: sum_i (x_{i+1} - x_i) |F_P - F_Q|(x_i)."""
    cdf_gap = (torch.cumsum(p, 0) - torch.cumsum(q, 0))[:-1]
    return (torch.diff(x) * cdf_gap.abs()).sum()


# --- the reference value logged during training on toy data ------------------------------


def _kde_log_prob(x: Tensor, centres: Tensor, h: float) -> Tensor:
    """log of a Gaussian kernel density estimate with bandwidth h: (N, d), (M, d) -> (N,)."""
    d = x.shape[1]
    # In place on the one (N, M) buffer, in the order of
    # -0.5 * d2 / h**2 - d log h - d/2 log 2 pi, so the figures are the same to the bit.
    log_k = torch.cdist(x, centres).square_()  # (N, M)
    log_k.mul_(-0.5).div_(h**2).sub_(d * math.log(h)).sub_(0.5 * d * math.log(2 * math.pi))
    return torch.logsumexp(log_k, dim=1) - math.log(centres.shape[0])


def smoothed_f_divergence(name: str, mixture, fake: Tensor, h: float,
                          n_mc: int = 4096, seed: int = 0) -> float:
    """D_f(P * K_h || Q_hat * K_h): data and generator both smoothed by a Gaussian kernel.

    The data side is exact (a mixture convolved with N(0, h^2) is the same mixture with
    stds sqrt(s^2 + h^2)); the generator side is the kernel density estimate of ``fake``.
    Smoothing both sides alike makes the reference zero when the generator reproduces the
    data, and it tends to D_f(P||Q) as h -> 0. In 1-D the integral is taken on a grid; in
    more dimensions by Monte Carlo over samples of M = (P_h + Q_h) / 2, where every
    integrand q f(p/q) / m is bounded for the bounded divergences.
    """
    from ganzoo.distributions import GaussianMixture

    x_fake = fake.detach().reshape(fake.shape[0], -1).double().cpu()
    p_h = GaussianMixture(mixture.means, torch.sqrt(mixture.stds**2 + h**2), mixture.weights)
    integrand = INTEGRANDS[name]
    if x_fake.shape[1] == 1:
        both = torch.cat([x_fake[:, 0], mixture.means[:, 0].double()])
        pad = 6 * float(torch.sqrt(mixture.stds.max() ** 2 + h**2))
        grid = torch.linspace(both.min().item() - pad, both.max().item() + pad, 4001,
                              dtype=torch.float64)[:, None]
        lp, lq = p_h.log_prob(grid).double(), _kde_log_prob(grid, x_fake, h)
        return float(torch.trapezoid(integrand(lp, lq), grid[:, 0]))
    gen = torch.Generator().manual_seed(seed)
    x_p = p_h.sample(n_mc // 2, generator=gen).double()
    pick = torch.randint(x_fake.shape[0], (n_mc // 2,), generator=gen)
    x_q = x_fake[pick] + h * torch.randn(n_mc // 2, x_fake.shape[1], generator=gen,
                                         dtype=torch.float64)
    x = torch.cat([x_p, x_q])  # (n_mc, d) ~ M
    lp, lq = p_h.log_prob(x).double(), _kde_log_prob(x, x_fake, h)
    lm = torch.logaddexp(lp, lq) - LOG2
    return float((integrand(lp, lq) * torch.exp(-lm)).mean())


def empirical_w1(mixture, fake: Tensor, seed: int = 0) -> float:
    """W1(P, Q_hat) with Q_hat the empirical distribution of ``fake``.

    1-D: the integral of |F_P - F_Q_hat| on a fine grid, F_P exact. More dimensions: the
    optimal matching between ``fake`` and as many fresh data samples (an upper-biased
    estimate of W1 that shrinks as samples grow).
    """
    x_fake = fake.detach().reshape(fake.shape[0], -1).double().cpu()
    if x_fake.shape[1] == 1:
        means, stds = mixture.means[:, 0].double(), mixture.stds.double()
        lo = min(x_fake.min().item(), (means - 8 * stds).min().item())
        hi = max(x_fake.max().item(), (means + 8 * stds).max().item())
        grid = torch.linspace(lo, hi, 20001, dtype=torch.float64)
        cdf_p = (mixture.weights.double()
                 * torch.special.ndtr((grid[:, None] - means) / stds)).sum(1)
        cdf_q = torch.searchsorted(x_fake[:, 0].sort().values, grid, right=True)
        return float(torch.trapezoid((cdf_p - cdf_q / x_fake.shape[0]).abs(), grid))
    from scipy.optimize import linear_sum_assignment

    gen = torch.Generator().manual_seed(seed)
    x_p = mixture.sample(x_fake.shape[0], generator=gen).double()
    cost = torch.cdist(x_p, x_fake)
    rows, cols = linear_sum_assignment(cost.numpy())
    return float(cost[rows, cols].mean())


def reference_divergence(loss, mixture, fake: Tensor, h: float | None = None,
                         seed: int = 0) -> float | None:
    """The true value of ``loss.divergence()`` between ``mixture`` and samples ``fake``.

    ``loss.target`` names the divergence (an INTEGRANDS key, or ``w1``) and
    ``loss.target_scale`` its constant, so the reference is in the units the critic
    reports. f-divergences use kernel width ``h`` (default: the smallest mode std).
    """
    target = getattr(loss, "target", None)
    if target is None:
        return None
    if target == "w1":
        return empirical_w1(mixture, fake, seed) * loss.target_scale
    h = float(mixture.stds.min()) if h is None else h
    return smoothed_f_divergence(target, mixture, fake, h, seed=seed) * loss.target_scale


def gaussian_w1_and_gp_optimum(mu_p: float, sd_p: float, mu_q: float, sd_q: float,
                               gp_weight: float) -> tuple[float, float]:
    """W1 between two 1-D Gaussians, and what the WGAN-GP critic's optimum reports instead.

    On the line E_P[f] - E_Q[f] = -integral f'(x) (F_P - F_Q)(x) dx. The two-sided penalty
    lambda E_rho[(|f'| - 1)^2], rho the density of the interpolates eps x_P + (1 - eps) x_Q,
    is pointwise too, so the penalised optimum has slope |f'| = 1 + |F_P - F_Q| / (2 lambda
    rho): steeper than 1 where interpolates are sparse. Its E_P[f] - E_Q[f] is therefore
    W1 + integral (F_P - F_Q)^2 / (2 lambda rho) dx, an overestimate of W1 (Gulrajani et al.
    2017 enforce the constraint only on the interpolates).
    """
    span = 10 * max(sd_p, sd_q)
    x = torch.linspace(min(mu_p, mu_q) - span, max(mu_p, mu_q) + span, 20001,
                       dtype=torch.float64)
    gap = torch.special.ndtr((x - mu_p) / sd_p) - torch.special.ndtr((x - mu_q) / sd_q)
    w1 = torch.trapezoid(gap.abs(), x)
    eps = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000  # midpoint rule on U[0, 1]
    mean = eps * mu_p + (1 - eps) * mu_q  # given eps the interpolate is Gaussian
    sd = torch.sqrt((eps * sd_p) ** 2 + ((1 - eps) * sd_q) ** 2)
    rho = (torch.exp(-0.5 * ((x[:, None] - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
           ).mean(1)  # (len(x),)
    bias = torch.trapezoid(gap**2 / (2 * gp_weight * rho.clamp_min(1e-300)), x)
    return w1.item(), (w1 + bias).item()
