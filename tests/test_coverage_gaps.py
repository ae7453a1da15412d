"""Behaviour that no other test pins down exactly: the linear learning-rate decay as the
logs record it, ``theory.empirical_w1`` on point sets whose optimum is known, and the
chunking of ``GAN.generate``.

Everything here goes through public surfaces (``train(cfg)``, its CSV log and
metrics.json, Lightning callbacks named in the config, ``GAN.generate``) so that it does
not depend on how the GAN module is constructed.
"""

import csv
import itertools
import json
import math

import pytest
import torch
from torch.testing import assert_close

from ganzoo.data.toy import GaussianMixture, gauss1d
from ganzoo.theory import empirical_w1
from train import train

# --- learning-rate decay, as logged ------------------------------------------------------


def _logged_lrs(out_dir) -> dict[int, tuple[float, float]]:
    """{generator step: (train/lr_g, train/lr_d)} from the run's CSV log, one row per step."""
    with open(out_dir / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["train/lr_g"]]
    lrs = {int(r["step"]): (float(r["train/lr_g"]), float(r["train/lr_d"])) for r in rows}
    assert len(lrs) == len(rows), "a generator step was logged twice"
    return lrs


@pytest.mark.parametrize("n_critic, steps", [(1, 10), (3, 4)])
def test_linear_decay_logs_the_rate_after_each_generator_step(make_cfg, tmp_path, n_critic,
                                                              steps):
    """lr_decay=linear (the default): the scheduler steps once per generator update, just
    before the figures are logged, so the rate logged at generator step g is the one the
    next update uses, base * (1 - g / steps), and 0 at the last step. Lightning's optimiser
    step count (k + 1 per generator update) plays no part."""
    cfg = make_cfg(f"steps={steps}", "log_every=1", f"n_critic={n_critic}")
    assert cfg.lr_decay == "linear"  # the default in conf/train.yaml
    base_g, base_d = cfg.optim.g.lr, cfg.optim.d.lr
    assert base_g != base_d  # the toy MLP's TTUR rates: a swap of the two would show
    metrics = train(cfg)
    lrs = _logged_lrs(tmp_path)
    assert sorted(lrs) == list(range(1, steps + 1))
    for g, (lr_g, lr_d) in lrs.items():
        # Exactly LambdaLR's arithmetic: base_lr * factor(g), factor(g) = 1 - g / steps.
        assert lr_g == base_g * (1.0 - g / steps), g
        assert lr_d == base_d * (1.0 - g / steps), g
    assert lrs[steps] == (0.0, 0.0)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train/lr_g"] == metrics["train/lr_g"] == 0.0
    assert saved["train/lr_d"] == metrics["train/lr_d"] == 0.0


def test_no_decay_keeps_the_base_rates(make_cfg, tmp_path):
    cfg = make_cfg("steps=5", "log_every=1", "lr_decay=none")
    metrics = train(cfg)
    lrs = _logged_lrs(tmp_path)
    assert lrs == {g: (cfg.optim.g.lr, cfg.optim.d.lr) for g in range(1, 6)}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train/lr_g"] == metrics["train/lr_g"] == cfg.optim.g.lr
    assert saved["train/lr_d"] == metrics["train/lr_d"] == cfg.optim.d.lr


# --- theory.empirical_w1 on point sets -------------------------------------------------


class FixedSample:
    """A 'mixture' whose samples are a given point set: empirical_w1 then measures W1
    between two point sets of equal size, the optimal matching's mean distance."""

    def __init__(self, points: torch.Tensor) -> None:
        self.points = points

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        assert n == self.points.shape[0], "empirical_w1 draws as many points as it matches"
        return self.points


def _brute_force_w1(p: torch.Tensor, q: torch.Tensor) -> float:
    """min over all matchings of the mean Euclidean distance, by enumeration."""
    n = p.shape[0]
    pts_p, pts_q = p.tolist(), q.tolist()
    return min(sum(math.dist(pts_p[i], pts_q[j]) for i, j in enumerate(perm)) / n
               for perm in itertools.permutations(range(n)))


def test_w1_of_a_translate_is_the_translation_length():
    """For Q = P + t every matching costs at least |t| on average (the triangle inequality
    on the sum of the differences), and the identity attains it; the order of Q's points
    does not matter."""
    p = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor([3.0, 4.0], dtype=torch.float64)
    shuffled = (p + t)[torch.randperm(40, generator=torch.Generator().manual_seed(1))]
    assert_close(empirical_w1(FixedSample(p), shuffled), 5.0)
    assert_close(empirical_w1(FixedSample(p), p.flip(0)), 0.0)


def test_w1_of_two_swapped_pairs():
    """P = {(0,0), (2,0)}, Q = {(2,1), (0,1)}: matching in the given order costs sqrt(5)
    per point, the crossed matching 1, so W1 = 1 exactly."""
    p = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[2.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert empirical_w1(FixedSample(p), q) == 1.0
    assert empirical_w1(FixedSample(q), p) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_w1_is_the_optimal_matching_found_by_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    q = 2 * torch.rand(6, 2, generator=gen, dtype=torch.float64)
    expected = _brute_force_w1(p, q)
    # The identity matching is not optimal here, so an unmatched mean would fail.
    assert expected < sum(math.dist(a, b) for a, b in zip(p.tolist(), q.tolist(), strict=True)) / 6
    assert_close(empirical_w1(FixedSample(p), q), expected)
    # float32 samples are measured in float64 alike.
    assert_close(empirical_w1(FixedSample(p), q.float()),
                 _brute_force_w1(p, q.float().double()))


def test_w1_to_a_point_mass_mixture_is_the_mean_distance():
    """A real GaussianMixture, one mode of std 1e-6 at c: every fresh data sample is c up
    to 1e-5, so W1 is the mean distance of the fake points to c."""
    c = torch.tensor([1.0, -2.0])
    mixture = GaussianMixture([c.tolist()], 1e-6)
    fake = torch.tensor([[1.0, 1.0], [4.0, -2.0], [1.0, -2.0], [-2.0, 2.0]])  # 3, 3, 0, 5
    assert empirical_w1(mixture, fake) == pytest.approx(11 / 4, abs=1e-5)


def test_w1_in_one_dimension_is_the_cdf_gap_integral():
    """1-D: N(0, 1) against all mass at a: W1 = E|X - a| = a (2 Phi(a) - 1) + 2 phi(a),
    computed on a grid of 20,001 points over [-8, 8] (the jump at a costs the trapezoid
    rule about half a grid step, 4e-4)."""
    a = 0.7
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    expected = a * math.erf(a / math.sqrt(2)) + 2 * phi
    fake = torch.full((50, 1), a)
    assert empirical_w1(gauss1d([0.0], [1.0]), fake) == pytest.approx(expected, abs=5e-4)
