"""Hinge, least squares and the R1 penalty (ganzoo.penalties.R1) against values computed
by hand.

Real and fake logits always differ, so swapped arguments cannot pass.
"""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganzoo.losses import Hinge, LeastSquares
from ganzoo.penalties import R1

REAL = [1.5, -0.5, 0.25]
FAKE = [-2.0, 0.5, -0.75, 1.25]


def t(xs):
    return torch.tensor(xs, dtype=torch.float64)


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def test_hinge_by_hand():
    loss = Hinge()
    # E_P[max(0, 1 - r)] = mean(0, 1.5, 0.75); E_Q[max(0, 1 + f)] = mean(0, 1.5, 0.25, 2.25)
    expected_d = mean([0.0, 1.5, 0.75]) + mean([0.0, 1.5, 0.25, 2.25])
    assert_close(loss.d_loss(t(REAL), t(FAKE)), t(expected_d))
    assert_close(loss.g_loss(None, t(FAKE)), t(-mean(FAKE)))
    assert_close(loss.divergence(t(REAL), t(FAKE)), t(1 - expected_d / 2))
    assert not torch.allclose(loss.d_loss(t(REAL[:3]), t(FAKE[:3])),
                              loss.d_loss(t(FAKE[:3]), t(REAL[:3])))


def test_hinge_optimal_critic_gives_total_variation():
    # Two points: P = (0.7, 0.3), Q = (0.2, 0.8); D* = sign(p - q) = (+1, -1); TV = 0.5.
    p, q = [0.7, 0.3], [0.2, 0.8]
    d_star = [1.0, -1.0]
    # expectation as a weighted sum: repeat the logits in proportion (10 draws)
    real = t([d_star[0]] * 7 + [d_star[1]] * 3)
    fake = t([d_star[0]] * 2 + [d_star[1]] * 8)
    tv = 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True))
    assert_close(Hinge().divergence(real, fake), t(tv))


def test_lsgan_by_hand_default_codes():
    loss = LeastSquares()  # a = 0, b = 1, c = 1
    expected_d = 0.5 * mean((r - 1) ** 2 for r in REAL) + 0.5 * mean(f**2 for f in FAKE)
    expected_g = 0.5 * mean((f - 1) ** 2 for f in FAKE)
    assert_close(loss.d_loss(t(REAL), t(FAKE)), t(expected_d))
    assert_close(loss.g_loss(None, t(FAKE)), t(expected_g))
    assert_close(loss.divergence(t(REAL), t(FAKE)), t(2 - 8 * expected_d))


def test_lsgan_pearson_codes_and_triangular_discrimination():
    loss = LeastSquares(a=-1.0, b=1.0, c=0.0)
    expected_d = 0.5 * mean((r - 1) ** 2 for r in REAL) + 0.5 * mean((f + 1) ** 2 for f in FAKE)
    assert_close(loss.d_loss(t(REAL), t(FAKE)), t(expected_d))
    assert_close(loss.g_loss(None, t(FAKE)), t(0.5 * mean(f**2 for f in FAKE)))
    # Optimal critic (b p + a q) / (p + q) on P = (0.7, 0.3), Q = (0.2, 0.8)
    p, q = [0.7, 0.3], [0.2, 0.8]
    d_star = [(pi - qi) / (pi + qi) for pi, qi in zip(p, q, strict=True)]
    real = t([d_star[0]] * 7 + [d_star[1]] * 3)
    fake = t([d_star[0]] * 2 + [d_star[1]] * 8)
    delta = sum((pi - qi) ** 2 / (pi + qi) for pi, qi in zip(p, q, strict=True))
    assert_close(loss.divergence(real, fake), t(delta))


def test_lsgan_refuses_equal_codes():
    with pytest.raises(ValueError, match="loss.a and loss.b must differ"):
        LeastSquares(a=1.0, b=1.0)


def test_r1_of_a_linear_critic_is_exact():
    # D(x) = <w, x> + 3 has gradient w everywhere: R1 = gamma / 2 * ||w||^2.
    D = nn.Linear(4, 1).double()
    with torch.no_grad():
        D.weight.copy_(t([[1.0, -2.0, 0.5, 3.0]]))
        D.bias.fill_(3.0)
    real = torch.randn(5, 4, dtype=torch.float64)
    fake = torch.randn(5, 4, dtype=torch.float64) + 3.0
    assert_close(R1(weight=10.0)(D, real, fake), t(5.0 * (1 + 4 + 0.25 + 9)))


def test_r1_is_per_sample_on_flattened_images():
    # D(x) = sum(x^2): gradient 2x, so R1 = gamma / 2 * mean_i ||2 x_i||^2.
    real = torch.arange(2 * 1 * 2 * 2, dtype=torch.float64).view(2, 1, 2, 2)
    fake = 10.0 - real  # different norms: R1 must read the real samples
    value = R1(weight=0.5)(lambda x: (x**2).flatten(1).sum(1), real, fake)
    expected = 0.25 * mean(4 * float((real[i] ** 2).sum()) for i in range(2))
    assert_close(value, t(expected))


def _linear_gan(**kwargs):
    from ganzoo.gan import GAN
    from ganzoo.losses import NonSaturating

    D = nn.Linear(3, 1).double()
    with torch.no_grad():
        D.weight.copy_(t([[2.0, -1.0, 0.5]]))
    return GAN(nn.Linear(2, 3), D, NonSaturating(), torch.optim.Adam, torch.optim.Adam,
               latent_dim=2, **kwargs)


def test_r1_is_lazy_every_n_critic_steps_and_scaled_by_n():
    module = _linear_gan(penalty=R1(weight=2.0, every=3))
    real = torch.randn(4, 3, dtype=torch.float64)
    fake = torch.randn(4, 3, dtype=torch.float64) + 3.0
    full = 3 * 0.5 * 2.0 * (4 + 1 + 0.25)  # every * gamma / 2 * ||w||^2
    values = []
    for d_step in range(7):  # the critic updates done before this one
        module.d_step = d_step
        value = module._penalty(real, fake, None)
        values.append(None if value is None else float(value.detach()))
    assert values == [full, None, None, full, None, None, full]  # None: no penalty term
    assert _linear_gan()._penalty(real, fake, None) is None  # off by default


def test_r1_runs_in_the_loop(make_cfg, monkeypatch):
    from train import train

    calls = []
    original = R1.forward

    def counting(self, D, real, fake):
        calls.append(self.weight)
        return original(self, D, real, fake)

    monkeypatch.setattr(R1, "forward", counting)
    metrics = train(make_cfg("penalty=r1", "penalty.weight=0.5", "penalty.every=2", "steps=5",
                             "log_every=1"))
    assert metrics["status"] == "completed"
    assert calls == [0.5, 0.5, 0.5]  # critic steps 0, 2 and 4 of 5
    assert metrics["train/penalty"] > 0  # the last logged step (4) carried it


def test_r1_settings_are_replaced_by_the_penalty_group(make_cfg):
    from ganzoo.config import ConfigError, validate

    msg = ("r1_gamma and r1_every are replaced by the penalty group: use penalty=r1 "
           "penalty.weight=GAMMA penalty.every=N")
    for override in ("r1_gamma=1.0", "r1_every=2"):
        with pytest.raises(ConfigError) as err:
            validate(make_cfg(override))
        assert str(err.value) == msg, override


def test_bad_penalty_settings_are_refused(make_cfg, tmp_path):
    from ganzoo.config import ConfigError
    from train import train

    # The penalty's constructor refuses them as the module is built, in one line.
    for overrides, msg in [
        (("penalty.weight=-1.0",), "penalty.weight must be a number >= 0, got -1.0"),
        (("penalty.every=0",), "penalty.every must be an integer >= 1, got 0"),
    ]:
        with pytest.raises(ConfigError) as err:
            train(make_cfg("penalty=r1", *overrides))
        assert str(err.value) == msg
    assert not (tmp_path / "checkpoints").exists()  # refused before training
