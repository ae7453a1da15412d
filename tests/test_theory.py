"""Losses as executable theory: with the critic at its optimum, each objective is a divergence.

On discrete P, Q over a few support points the critic is one free logit per point. The
expectations under P and Q are made exact by feeding the plugin's own ``d_loss`` batches
in which each point's logit appears as often as its (rational) probability says. The
minimum found by L-BFGS is compared with the closed forms of ``ganzoo.theory``, which
are written from the definitions and share no code with the plugins:

  minimax / nonsaturating  -min d_loss = 2 JS - log 4, D* = p / (p + q)   (Goodfellow 2014)
  fgan                     -min d_loss = sum q f(p/q), T* = f'(p/q)       (Nowozin 2016)
  wasserstein              max over 1-Lipschitz critics = W1              (Arjovsky 2017)
"""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganzoo import theory
from ganzoo.losses import F_DIVERGENCES, FGAN, Minimax, NonSaturating, Wasserstein
from ganzoo.penalties import GradientPenalty

DTYPE = torch.float64
N_POINTS = 5
SEEDS = [0, 1, 2]
# Counts of each support point in the P and Q batches; zeros make supports partly disjoint.
DISJOINT = ([3, 0, 5, 2, 0], [0, 4, 1, 2, 3])
BOUNDED = ["js", "gan", "total_variation"]  # finite on partly disjoint supports
# Exact where the optimum is finite: L-BFGS in float64 leaves only round-off.
EXACT = dict(rtol=1e-9, atol=1e-11)
# The optimum sits at logit +-inf (total variation, points outside one support):
# L-BFGS stops where the loss is flat to within this.
AT_INFINITY = dict(rtol=0.0, atol=1e-6)


def random_counts(seed: int) -> tuple[list[int], list[int]]:
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 12, (2, N_POINTS), generator=gen)
    return counts[0].tolist(), counts[1].tolist()


PAIRS = [random_counts(s) for s in SEEDS]


def probabilities(counts: list[int]) -> torch.Tensor:
    c = torch.tensor(counts, dtype=DTYPE)
    return c / c.sum()


def expected_d_loss(loss, logits: torch.Tensor, counts_p, counts_q) -> torch.Tensor:
    """E_P, E_Q of the plugin's d_loss, exact: point i appears counts[i] times per batch."""
    real = logits.repeat_interleave(torch.tensor(counts_p))
    fake = logits.repeat_interleave(torch.tensor(counts_q))
    return loss.d_loss(real, fake)


def optimal_logits(loss, counts_p, counts_q) -> torch.Tensor:
    """argmin over one free logit per support point of E[d_loss], by L-BFGS in float64."""
    v = torch.zeros(N_POINTS, dtype=DTYPE, requires_grad=True)
    # Stop at gradient 1e-10: where the optimum is finite the value is then exact to
    # round-off (its error is quadratic in the gradient); where it is at infinity the
    # loss left to gain is about the gradient's size.
    opt = torch.optim.LBFGS([v], lr=1, max_iter=500, tolerance_grad=1e-10,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = expected_d_loss(loss, v, counts_p, counts_q)
        value.backward()
        return value

    opt.step(closure)
    return v.detach()


def both_supports(counts_p, counts_q) -> torch.Tensor:
    return (torch.tensor(counts_p) > 0) & (torch.tensor(counts_q) > 0)


# --- minimax and non-saturating: Goodfellow et al. 2014, Prop. 1 and Thm. 1 ---------------


@pytest.mark.parametrize("loss_cls", [Minimax, NonSaturating])
@pytest.mark.parametrize("counts", PAIRS + [pytest.param(DISJOINT, marks=pytest.mark.slow)],
                         ids=[*map(str, SEEDS), "disjoint"])
def test_minimax_critic_attains_js(loss_cls, counts):
    counts_p, counts_q = counts
    loss = loss_cls()
    p, q = probabilities(counts_p), probabilities(counts_q)
    v = optimal_logits(loss, counts_p, counts_q)
    tol = EXACT if both_supports(*counts).all() else AT_INFINITY
    js = theory.js(p, q)
    value = -expected_d_loss(loss, v, counts_p, counts_q)
    assert_close(value, 2 * js - math.log(4), **tol)
    # D*(x) = p / (p + q), at every point; 0 and 1 outside one support.
    assert_close(torch.sigmoid(v), p / (p + q), rtol=0.0, atol=1e-6)
    # divergence() reports JS in nats.
    real = v.repeat_interleave(torch.tensor(counts_p))
    fake = v.repeat_interleave(torch.tensor(counts_q))
    assert_close(loss.divergence(real, fake), js, **tol)


def test_js_closed_form_on_a_hand_example():
    # P = (1, 0), Q = (0, 1): disjoint, JS = log 2. P = Q: JS = 0.
    assert_close(theory.js(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])),
                 torch.tensor(math.log(2), dtype=DTYPE))
    assert_close(theory.js(torch.tensor([0.3, 0.7]), torch.tensor([0.3, 0.7])),
                 torch.tensor(0.0, dtype=DTYPE))


# --- f-GAN: Nowozin et al. 2016, Eq. 4-6 and Tables 1-2 ------------------------------------


FGAN_CASES = [(name, c) for name in sorted(F_DIVERGENCES) for c in PAIRS] + [
    pytest.param(name, DISJOINT, marks=pytest.mark.slow) for name in BOUNDED]


@pytest.mark.parametrize("name, counts", FGAN_CASES,
                         ids=[f"{n}-{i}" for n, i in
                              [(n, s) for n in sorted(F_DIVERGENCES) for s in SEEDS]
                              + [(n, "disjoint") for n in BOUNDED]])
def test_fgan_critic_attains_f_divergence(name, counts):
    counts_p, counts_q = counts
    loss = FGAN(name)
    p, q = probabilities(counts_p), probabilities(counts_q)
    v = optimal_logits(loss, counts_p, counts_q)
    at_infinity = name == "total_variation" or not both_supports(*counts).all()
    tol = AT_INFINITY if at_infinity else EXACT
    d_f = theory.f_divergence(name, p, q)
    value = -expected_d_loss(loss, v, counts_p, counts_q)
    assert_close(value, d_f, **tol)
    real = v.repeat_interleave(torch.tensor(counts_p))
    fake = v.repeat_interleave(torch.tensor(counts_q))
    assert_close(loss.divergence(real, fake), d_f, **tol)
    # T* = g_f(V*) = f'(p/q) where both densities are positive.
    both = both_supports(*counts)
    assert_close(loss.activation(v)[both], theory.OPTIMAL_CRITIC[name](p[both] / q[both]),
                 rtol=1e-6, atol=1e-6)
    # The plugin's own f' (used by nothing above) agrees with the closed form.
    u = torch.tensor([0.25, 0.9, 1.7, 4.0], dtype=DTYPE)
    assert_close(loss.f_prime(u), theory.OPTIMAL_CRITIC[name](u))


def test_named_f_divergences_match_their_js_constants():
    p, q = probabilities(PAIRS[0][0]), probabilities(PAIRS[0][1])
    js = theory.js(p, q)
    assert_close(theory.f_divergence("js", p, q), 2 * js)
    assert_close(theory.f_divergence("gan", p, q), 2 * js - math.log(4))
    assert_close(theory.f_divergence("kl", p, q), (p * (p / q).log()).sum())
    assert_close(theory.f_divergence("total_variation", p, q), 0.5 * (p - q).abs().sum())


def test_fgan_gan_and_minimax_reach_the_same_optimum():
    counts_p, counts_q = PAIRS[1]
    for loss in (FGAN("gan"), Minimax()):
        assert_close(-expected_d_loss(loss, optimal_logits(loss, counts_p, counts_q),
                                      counts_p, counts_q),
                     2 * theory.js(probabilities(counts_p), probabilities(counts_q))
                     - math.log(4), **EXACT)


# --- Wasserstein: Arjovsky et al. 2017, Eq. 3 (Kantorovich-Rubinstein duality) ------------


@pytest.mark.parametrize("counts", PAIRS + [DISJOINT], ids=[*map(str, SEEDS), "disjoint"])
def test_wasserstein_critic_attains_w1_on_the_line(counts):
    """On points x_1 < ... < x_n a critic is 1-Lipschitz iff |v_{i+1} - v_i| <= x_{i+1} - x_i.

    The plugin's E[d_loss] is linear in v, so its gradient c (taken by autograd from the
    plugin itself) fixes the optimum in closed form: each increment is +-(x_{i+1} - x_i)
    with the sign of -sum_{j > i} c_j. Its value must be W1 = integral |F_P - F_Q|.
    """
    counts_p, counts_q = counts
    loss = Wasserstein(clip=0.0)
    p, q = probabilities(counts_p), probabilities(counts_q)
    x = torch.tensor([-1.3, -0.2, 0.5, 2.0, 3.75], dtype=DTYPE)
    v = torch.zeros(N_POINTS, dtype=DTYPE, requires_grad=True)
    (c,) = torch.autograd.grad(expected_d_loss(loss, v, counts_p, counts_q), v)
    tail = c.flip(0).cumsum(0).flip(0)[1:]  # sum_{j > i} c_j, i = 1..n-1
    steps = torch.diff(x) * -torch.sign(tail)
    v_star = torch.cat([torch.zeros(1, dtype=DTYPE), steps.cumsum(0)])
    w1 = theory.w1_1d(x, p, q)
    assert_close(-expected_d_loss(loss, v_star, counts_p, counts_q), w1, **EXACT)
    real = v_star.repeat_interleave(torch.tensor(counts_p))
    fake = v_star.repeat_interleave(torch.tensor(counts_q))
    assert_close(loss.divergence(real, fake), w1, **EXACT)
    # The optimal critic falls where P has more mass to its left (f' = -sign(F_P - F_Q)).
    gap = (p.cumsum(0) - q.cumsum(0))[:-1]
    moving = gap.abs() > 1e-12
    assert_close(torch.sign(steps)[moving], -torch.sign(gap)[moving])


def _train_gp_critic(mu_q: float, sd_q: float, penalty: GradientPenalty,
                     steps: int = 400) -> float:
    """E_P[D] - E_Q[D] of an MLP critic trained on P = N(0, 1), Q = N(mu_q, sd_q^2) with the
    WGAN-GP objective (loss=wgan_gp): the unclipped Wasserstein critic plus the penalty."""
    loss = Wasserstein(clip=0.0)
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                           nn.Linear(64, 1))
    opt = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.9))
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.05, total_iters=steps)
    for _ in range(steps):
        real, fake = torch.randn(512, 1), mu_q + sd_q * torch.randn(512, 1)
        opt.zero_grad()
        d = loss.d_loss(critic(real), critic(fake)) + penalty(critic, real, fake)
        d.backward()
        opt.step()
        sched.step()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # 10^5 samples: Monte Carlo error about 0.5% of W1 here
        real = torch.randn(100_000, 1, generator=gen)
        fake = mu_q + sd_q * torch.randn(100_000, 1, generator=gen)
        return loss.divergence(critic(real), critic(fake)).item()


@pytest.mark.slow
def test_wgan_gp_critic_estimates_w1():
    """Gulrajani et al. 2017: P = N(0, 1), Q = N(0.5, 1), W1 = 0.5.

    The penalised optimum reads 2.8% above W1 here (``gaussian_w1_and_gp_optimum``);
    the critic must land within 5% of W1 and within 2% of that optimum.
    """
    penalty = GradientPenalty(weight=10.0)
    w1, gp_optimum = theory.gaussian_w1_and_gp_optimum(0.0, 1.0, 0.5, 1.0, penalty.weight)
    assert w1 == pytest.approx(0.5, rel=1e-6)  # equal widths: W1 = |mean shift|
    estimate = _train_gp_critic(0.5, 1.0, penalty)
    assert estimate == pytest.approx(w1, rel=0.05)
    assert estimate == pytest.approx(gp_optimum, rel=0.02)


@pytest.mark.slow
def test_wgan_gp_overestimates_w1_as_its_penalty_predicts():
    """P = N(0, 1), Q = N(1.5, 0.5^2): the optimal slope flips where the CDFs cross and
    interpolates are sparse in P's left tail, so the critic is steeper than 1 there. The
    penalised optimum is 8.4% above W1 = 1.5004; the trained critic must match it (2%).
    """
    penalty = GradientPenalty(weight=10.0)
    w1, gp_optimum = theory.gaussian_w1_and_gp_optimum(0.0, 1.0, 1.5, 0.5, penalty.weight)
    assert gp_optimum / w1 - 1 == pytest.approx(0.084, abs=0.001)
    assert _train_gp_critic(1.5, 0.5, penalty) == pytest.approx(gp_optimum, rel=0.02)
