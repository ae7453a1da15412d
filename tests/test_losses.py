"""Loss plugins against values computed by hand from their probability forms.

Real and fake logits always differ, so swapped arguments cannot pass.
"""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganzoo.losses import F_DIVERGENCES, FGAN, WGANGP, Minimax, NonSaturating, Wasserstein

REAL = [1.5, -0.5, 2.0]
FAKE = [-1.0, 0.25, -3.0, 0.75]


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def t(xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_minimax_matches_log_probabilities():
    loss = Minimax()
    expected_d = -mean(math.log(sigmoid(r)) for r in REAL) - mean(
        math.log(1 - sigmoid(f)) for f in FAKE)
    expected_g = mean(math.log(1 - sigmoid(f)) for f in FAKE)
    assert_close(loss.d_loss(t(REAL), t(FAKE)), torch.tensor(expected_d, dtype=torch.float64))
    assert_close(loss.g_loss(t(FAKE)), torch.tensor(expected_g, dtype=torch.float64))
    # JS implied by the critic: (log 4 - d_loss) / 2
    assert_close(loss.divergence(t(REAL), t(FAKE)),
                 torch.tensor((math.log(4) - expected_d) / 2, dtype=torch.float64))


def test_nonsaturating_generator_and_shared_critic():
    loss = NonSaturating()
    expected_g = -mean(math.log(sigmoid(f)) for f in FAKE)
    assert_close(loss.g_loss(t(FAKE)), torch.tensor(expected_g, dtype=torch.float64))
    assert_close(loss.d_loss(t(REAL), t(FAKE)), Minimax().d_loss(t(REAL), t(FAKE)))


def test_argument_order_matters():
    loss = Minimax()
    assert not torch.allclose(loss.d_loss(t(REAL[:3]), t(FAKE[:3])),
                              loss.d_loss(t(FAKE[:3]), t(REAL[:3])))


def test_accepts_n_by_1_logits():
    loss = NonSaturating()
    assert_close(loss.d_loss(t(REAL)[:, None], t(FAKE)[:, None]), loss.d_loss(t(REAL), t(FAKE)))
    with pytest.raises(ValueError, match="shape"):
        loss.d_loss(torch.zeros(3, 2), torch.zeros(3))


def _grad_at(loss_fn, logit):
    v = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(loss_fn(v), v)
    return g.item()


def test_minimax_generator_saturates_and_nonsaturating_does_not():
    # d/dv log(1 - sigmoid(v)) = -sigmoid(v): 4.54e-5 at v = -10
    assert _grad_at(Minimax().g_loss, -10.0) == pytest.approx(-sigmoid(-10.0), rel=1e-9)
    assert abs(_grad_at(Minimax().g_loss, -10.0)) == pytest.approx(4.5398e-5, rel=1e-4)
    # d/dv -log sigmoid(v) = -(1 - sigmoid(v)): about -1 at v = -10
    assert _grad_at(NonSaturating().g_loss, -10.0) == pytest.approx(-sigmoid(10.0), rel=1e-9)


# Nowozin et al. 2016, Table 2, written naively: activation g_f and conjugate f*.
NAIVE = {
    "kl": (lambda v: v, lambda s: math.exp(s - 1)),
    "reverse_kl": (lambda v: -math.exp(-v), lambda s: -1 - math.log(-s)),
    "pearson": (lambda v: v, lambda s: s * s / 4 + s),
    "neyman": (lambda v: 1 - math.exp(-v), lambda s: 2 - 2 * math.sqrt(1 - s)),
    "squared_hellinger": (lambda v: 1 - math.exp(-v), lambda s: s / (1 - s)),
    "js": (lambda v: math.log(2) - math.log(1 + math.exp(-v)),
           lambda s: -math.log(2 - math.exp(s))),
    "gan": (lambda v: -math.log(1 + math.exp(-v)), lambda s: -math.log(1 - math.exp(s))),
    "total_variation": (lambda v: 0.5 * math.tanh(v), lambda s: s),
}


def test_every_divergence_has_a_naive_reference():
    assert set(NAIVE) == set(F_DIVERGENCES)


@pytest.mark.parametrize("name", sorted(NAIVE))
def test_fgan_matches_table_2(name):
    act, conj = NAIVE[name]
    loss = FGAN(name)
    objective = mean(act(r) for r in REAL) - mean(conj(act(f)) for f in FAKE)
    assert_close(loss.d_loss(t(REAL), t(FAKE)), torch.tensor(-objective, dtype=torch.float64))
    assert_close(loss.g_loss(t(FAKE)), torch.tensor(-mean(act(f) for f in FAKE),
                                                     dtype=torch.float64))
    assert_close(loss.divergence(t(REAL), t(FAKE)), torch.tensor(objective, dtype=torch.float64))


def test_fgan_gan_critic_equals_minimax_critic():
    assert_close(FGAN("gan").d_loss(t(REAL), t(FAKE)), Minimax().d_loss(t(REAL), t(FAKE)))
    assert_close(FGAN("gan").g_loss(t(FAKE)), NonSaturating().g_loss(t(FAKE)))


def test_fgan_is_stable_for_large_logits():
    big = torch.tensor([-60.0, 60.0], dtype=torch.float64)
    for name in ("js", "gan"):
        assert torch.isfinite(FGAN(name).d_loss(big, big)), name


def test_fgan_rejects_unknown_divergence():
    with pytest.raises(ValueError, match="unknown f-divergence 'hellinger'"):
        FGAN("hellinger")


def test_wasserstein_losses_and_clipping():
    loss = Wasserstein(clip=0.01)
    assert_close(loss.d_loss(t(REAL), t(FAKE)), torch.tensor(mean(FAKE) - mean(REAL),
                                                               dtype=torch.float64))
    assert_close(loss.g_loss(t(FAKE)), torch.tensor(-mean(FAKE), dtype=torch.float64))
    assert_close(loss.divergence(t(REAL), t(FAKE)), torch.tensor(mean(REAL) - mean(FAKE),
                                                                  dtype=torch.float64))
    critic = nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.5, -0.005, -2.0]]))
        critic.bias.fill_(0.02)
    loss.after_d_step(critic)
    assert_close(critic.weight, torch.tensor([[0.01, -0.005, -0.01]]))
    assert_close(critic.bias, torch.tensor([0.01]))


@pytest.mark.parametrize("norm, expected", [(1.0, 0.0), (2.0, 10.0), (0.5, 2.5)])
def test_gradient_penalty_of_linear_critic(norm, expected):
    critic = nn.Linear(4, 1, bias=True)
    with torch.no_grad():
        w = torch.tensor([[1.0, 2.0, -2.0, 4.0]])
        critic.weight.copy_(norm * w / w.norm())
    real, fake = torch.randn(8, 4), torch.randn(8, 4) + 3
    penalty = WGANGP(gp_weight=10.0).penalty(critic, real, fake)
    assert_close(penalty, torch.tensor(expected))


def test_gradient_penalty_is_per_sample_on_flattened_images():
    # D(x) = sum(x * a): gradient a for every sample, norm ||a|| over all pixels.
    a = torch.full((1, 2, 3, 3), 1 / math.sqrt(18))  # unit norm over 18 entries

    class Critic(nn.Module):
        def forward(self, x):
            return (x * a * 3).flatten(1).sum(1)  # gradient norm 3 per sample

    penalty = WGANGP(gp_weight=1.0).penalty(Critic(), torch.randn(5, 2, 3, 3),
                                            torch.randn(5, 2, 3, 3))
    assert_close(penalty, torch.tensor(4.0))  # (3 - 1)^2


def test_penalty_flows_into_the_critic():
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    penalty = WGANGP().penalty(critic, torch.randn(16, 2), torch.randn(16, 2))
    penalty.backward()
    # Every weight shapes grad_x D; the last bias does not, so it gets no gradient.
    for name, p in critic.named_parameters():
        if name == "2.bias":
            assert p.grad is None
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_default_penalty_is_zero():
    assert_close(NonSaturating().penalty(nn.Linear(2, 1), torch.randn(3, 2), torch.randn(3, 2)),
                 torch.tensor(0.0))
