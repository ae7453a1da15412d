"""eval/divergence_ref: the true divergence beside the critic's estimate, on toy data.

A generator that reproduces the data must read about zero; a shifted Gaussian must read
the closed form of the kernel-smoothed pair (both sides are smoothed alike, with width
h: N(0, 1 + h^2) against N(delta, 1 + h^2)).
"""

import math
from types import SimpleNamespace

import pytest
import torch

from ganzoo.data.toy import GaussianMixture, ToyDataModule, gauss1d, ring
from ganzoo.eval.toy import ToyEvaluator
from ganzoo.losses import FGAN, Minimax, Wasserstein
from ganzoo.theory import reference_divergence

N = 2500


def test_reproducing_the_data_reads_about_zero():
    gen = torch.Generator().manual_seed(0)
    for mixture in (gauss1d([-1.0, 2.0], [0.5, 0.5], [0.7, 0.3]), ring()):
        fake = mixture.sample(N, generator=gen)
        # KDE noise on 2,500 samples leaves a few thousandths of a nat.
        assert reference_divergence(FGAN("kl"), mixture, fake) == pytest.approx(0, abs=0.02)
        assert reference_divergence(Minimax(), mixture, fake) == pytest.approx(0, abs=0.01)
    # W1 to the empirical distribution in 1-D shrinks like n^(-1/2).
    fake = gauss1d([0.0], [1.0]).sample(N, generator=gen)
    assert reference_divergence(Wasserstein(), gauss1d([0.0], [1.0]), fake) == \
        pytest.approx(0, abs=0.05)


@pytest.mark.parametrize("name, closed_form", [
    ("kl", lambda d, v: d**2 / (2 * v)),
    ("reverse_kl", lambda d, v: d**2 / (2 * v)),
    ("squared_hellinger", lambda d, v: 2 * (1 - math.exp(-d**2 / (8 * v)))),
])
def test_shifted_gaussian_matches_the_closed_form(name, closed_form):
    """P = N(0, 1), Q = N(0.8, 1); h = 0.3 smooths both to variance v = 1.09."""
    delta, h = 0.8, 0.3
    data = gauss1d([0.0], [1.0])
    fake = delta + torch.randn(5000, 1, generator=torch.Generator().manual_seed(1))
    ref = reference_divergence(FGAN(name), data, fake, h=h)
    assert ref == pytest.approx(closed_form(delta, 1 + h**2), rel=0.05)


def test_wasserstein_reference_is_the_mean_shift():
    fake = 0.8 + torch.randn(5000, 1, generator=torch.Generator().manual_seed(2))
    ref = reference_divergence(Wasserstein(), gauss1d([0.0], [1.0]), fake)
    # W1 of equal-width Gaussians is the shift; the empirical side adds O(n^-1/2) = 0.014.
    assert ref == pytest.approx(0.8, abs=0.05)


def test_minimax_reference_is_js_in_nats_on_disjoint_modes():
    # Data on one mode, generator on a far one: JS = log 2, whatever the kernel.
    data = GaussianMixture([[0.0, 0.0]], 0.05)
    fake = torch.tensor([[5.0, 5.0]]) + 0.05 * torch.randn(N, 2)
    assert reference_divergence(Minimax(), data, fake) == pytest.approx(math.log(2), abs=1e-3)


def test_toy_evaluator_logs_the_reference():
    dm = ToyDataModule(gauss1d([-1.0, 2.0], [0.5, 0.5]), "gauss1d", [1], n_train=512,
                       n_eval=500)
    data = dm.distribution
    evaluator = ToyEvaluator(data, n_eval=dm.n_eval, seed=dm.seed)
    evaluator.setup(dm)
    module = SimpleNamespace(loss=FGAN("js"), discriminator=torch.nn.Linear(1, 1),
                             generate=lambda n, seed=0: data.sample(
                                 n, generator=torch.Generator().manual_seed(seed + 7)))
    figures = evaluator(module)
    assert figures["eval/divergence_ref"] == pytest.approx(0, abs=0.02)
    assert {"eval/modes", "eval/hq", "eval/reverse_kl"} <= set(figures)
