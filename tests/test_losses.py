"""Loss and penalty plugins against values computed by hand from their probability forms.

Real and fake logits (and real and fake samples) always differ, so swapped arguments
cannot pass.
"""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganzoo.losses import F_DIVERGENCES, FGAN, GANLoss, Minimax, NonSaturating, Wasserstein
from ganzoo.penalties import R1, R1R2, R2, GradientPenalty
from ganzoo.theory import INTEGRANDS

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
    assert_close(loss.g_loss(None, t(FAKE)), torch.tensor(expected_g, dtype=torch.float64))
    # JS implied by the critic: (log 4 - d_loss) / 2
    assert_close(loss.divergence(t(REAL), t(FAKE)),
                 torch.tensor((math.log(4) - expected_d) / 2, dtype=torch.float64))


def test_nonsaturating_generator_and_shared_critic():
    loss = NonSaturating()
    expected_g = -mean(math.log(sigmoid(f)) for f in FAKE)
    assert_close(loss.g_loss(None, t(FAKE)), torch.tensor(expected_g, dtype=torch.float64))
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


def _grad_at(loss, logit):
    """d g_loss / d fake logit at one fake logit."""
    v = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(loss.g_loss(None, v), v)
    return g.item()


def test_minimax_generator_saturates_and_nonsaturating_does_not():
    # d/dv log(1 - sigmoid(v)) = -sigmoid(v): 4.54e-5 at v = -10
    assert _grad_at(Minimax(), -10.0) == pytest.approx(-sigmoid(-10.0), rel=1e-9)
    assert abs(_grad_at(Minimax(), -10.0)) == pytest.approx(4.5398e-5, rel=1e-4)
    # d/dv -log sigmoid(v) = -(1 - sigmoid(v)): about -1 at v = -10
    assert _grad_at(NonSaturating(), -10.0) == pytest.approx(-sigmoid(10.0), rel=1e-9)


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
    assert_close(loss.g_loss(None, t(FAKE)), torch.tensor(-mean(act(f) for f in FAKE),
                                                     dtype=torch.float64))
    assert_close(loss.divergence(t(REAL), t(FAKE)), torch.tensor(objective, dtype=torch.float64))


def test_fgan_gan_critic_equals_minimax_critic():
    assert_close(FGAN("gan").d_loss(t(REAL), t(FAKE)), Minimax().d_loss(t(REAL), t(FAKE)))
    assert_close(FGAN("gan").g_loss(None, t(FAKE)), NonSaturating().g_loss(None, t(FAKE)))


def test_fgan_js_practical_differs_from_nonsaturating_only_by_constants():
    """docs/losses.md: with the same seed and optimiser, fgan (js) trains as nonsaturating."""
    real, fake = t(REAL).requires_grad_(), t(FAKE).requires_grad_()
    js, ns = FGAN("js"), NonSaturating()
    assert_close(js.d_loss(real, fake), ns.d_loss(real, fake) - 2 * math.log(2))
    assert_close(js.g_loss(None, fake), ns.g_loss(None, fake) - math.log(2))
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(x, (real, fake), allow_unused=True, materialize_grads=True)

    assert_close(grads(js.d_loss(real, fake)), grads(ns.d_loss(real, fake)))
    assert_close(grads(js.g_loss(None, fake)), grads(ns.g_loss(None, fake)))


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
    assert_close(loss.g_loss(None, t(FAKE)), torch.tensor(-mean(FAKE), dtype=torch.float64))
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
    penalty = GradientPenalty(weight=10.0)(critic, real, fake)
    assert_close(penalty, torch.tensor(expected))


def test_gradient_penalty_is_per_sample_on_flattened_images():
    # D(x) = sum(x * a): gradient a for every sample, norm ||a|| over all pixels.
    a = torch.full((1, 2, 3, 3), 1 / math.sqrt(18))  # unit norm over 18 entries

    class Critic(nn.Module):
        def forward(self, x):
            return (x * a * 3).flatten(1).sum(1)  # gradient norm 3 per sample

    penalty = GradientPenalty(weight=1.0)(Critic(), torch.randn(5, 2, 3, 3),
                                          torch.randn(5, 2, 3, 3))
    assert_close(penalty, torch.tensor(4.0))  # (3 - 1)^2


def test_penalty_flows_into_the_critic():
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    penalty = GradientPenalty(weight=10.0)(critic, torch.randn(16, 2), torch.randn(16, 2))
    penalty.backward()
    # Every weight shapes grad_x D; the last bias does not, so it gets no gradient.
    for name, p in critic.named_parameters():
        if name == "2.bias":
            assert p.grad is None
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("shape", [(6, 3), (5, 2, 3, 3)], ids=["vectors", "images"])
def test_gradient_penalty_reproduces_the_wgan_gp_penalty(shape):
    """Gulrajani et al. 2017, Algorithm 1, written out from the same random stream:
    eps ~ U[0, 1] per sample, x_hat = eps x + (1 - eps) G(z), the per-sample norm of
    grad_x D(x_hat) over the flattened sample, lambda * mean (norm - 1)^2."""
    torch.manual_seed(0)
    n, features = shape[0], math.prod(shape[1:])
    net = nn.Sequential(nn.Flatten(), nn.Linear(features, 8), nn.Tanh(),
                        nn.Linear(8, 1)).double()
    real = torch.randn(shape, dtype=torch.float64)
    fake = torch.randn(shape, dtype=torch.float64) + 2.0
    lam = 7.5

    torch.manual_seed(123)
    eps = torch.rand(n).to(torch.float64).view(n, *[1] * (len(shape) - 1))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x_hat).sum(), x_hat)
    norm = grad.reshape(n, -1).norm(2, dim=1)
    expected = lam * ((norm - 1) ** 2).mean()

    torch.manual_seed(123)
    value = GradientPenalty(weight=lam)(net, real, fake)
    assert_close(value, expected)
    assert value.item() > 0.1  # a penalty that is actually there to compare


def test_default_is_no_penalty(make_cfg):
    # A loss carries no penalty any more; the module adds one only when given one.
    assert not hasattr(NonSaturating(), "penalty")
    assert make_cfg().penalty is None  # penalty=none by default
    from ganzoo.gan import GAN

    module = GAN(nn.Linear(2, 2), nn.Linear(2, 1), NonSaturating(), torch.optim.Adam,
                 torch.optim.Adam, latent_dim=2)
    assert module.penalty is None
    assert module._penalty(torch.randn(3, 2), torch.randn(3, 2), None) is None


# --- R1, R2, R1R2: Mescheder et al. 2018, Eq. 9 and 10 -------------------------------------


def _linear_critic():
    # D(x) = <w, x> + 3 has gradient w everywhere: ||w||^2 = 1 + 4 + 0.25 + 9 = 14.25.
    D = nn.Linear(4, 1).double()
    with torch.no_grad():
        D.weight.copy_(t([[1.0, -2.0, 0.5, 3.0]]))
        D.bias.fill_(3.0)
    return D


def test_r2_of_a_linear_critic_is_exact():
    D = _linear_critic()
    real = torch.randn(5, 4, dtype=torch.float64)
    fake = torch.randn(5, 4, dtype=torch.float64) + 3.0
    assert_close(R2(weight=10.0)(D, real, fake), t(5.0 * 14.25))  # gamma / 2 * ||w||^2
    assert_close(R2(weight=0.5)(D, real, fake), t(0.25 * 14.25))
    assert_close(R1R2(weight=10.0)(D, real, fake), t(10.0 * 14.25))  # R1 + R2


def test_r2_is_zero_centred_on_fake_samples_and_r1_on_real_ones():
    # D(x) = sum(x^2): gradient 2x, so the penalty reads the samples it is taken on:
    # R1 = gamma / 2 * mean_i ||2 x_i||^2 over real, R2 the same over fake.
    real = torch.arange(2 * 1 * 2 * 2, dtype=torch.float64).view(2, 1, 2, 2)
    fake = -0.5 * real.flip(0) + 1.0
    assert not torch.allclose((real**2).sum(), (fake**2).sum())

    def critic(x):
        return (x**2).flatten(1).sum(1)

    gamma = 0.5
    r1 = 0.5 * gamma * mean(4 * float((real[i] ** 2).sum()) for i in range(2))
    r2 = 0.5 * gamma * mean(4 * float((fake[i] ** 2).sum()) for i in range(2))
    assert_close(R2(weight=gamma)(critic, real, fake), t(r2))
    assert_close(R1(weight=gamma)(critic, real, fake), t(r1))
    assert_close(R1R2(weight=gamma)(critic, real, fake),
                 R1(weight=gamma)(critic, real, fake) + R2(weight=gamma)(critic, real, fake))
    assert_close(R1R2(weight=gamma)(critic, real, fake), t(r1 + r2))


# --- f of Nowozin et al. 2016, Table 1 ------------------------------------------------------


def test_every_divergence_has_an_integrand():
    assert set(INTEGRANDS) == set(F_DIVERGENCES)


@pytest.mark.parametrize("name", sorted(F_DIVERGENCES))
def test_fgan_f_is_the_integrand_of_table_1(name):
    # q f(p/q) from the plugin's f equals the perspective written in p and q (theory).
    p = t([0.1, 0.35, 0.8, 1.7, 0.05])
    q = t([0.6, 0.35, 0.2, 1.1, 0.9])
    assert_close(FGAN(name).f(p / q) * q, INTEGRANDS[name](p.log(), q.log()))


# --- the loss contract ----------------------------------------------------------------------


def test_a_loss_without_divergence_returns_none():
    class Plain(GANLoss):
        def d_loss(self, real_logits, fake_logits):
            return flat_mean(fake_logits) - flat_mean(real_logits)

        def g_loss(self, real_logits, fake_logits):
            return -flat_mean(fake_logits)

    loss = Plain()
    assert loss.divergence(t(REAL), t(FAKE)) is None
    assert_close(loss.d_loss(t(REAL), t(FAKE)), t(mean(FAKE) - mean(REAL)))
    assert_close(loss.g_loss(None, t(FAKE)), t(-mean(FAKE)))
    assert not loss.needs_real_logits


def flat_mean(logits):
    return logits.flatten().mean()
