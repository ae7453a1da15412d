"""Adversarial loss plugins: each owns the mathematics of one GAN objective.

Every plugin works on raw discriminator outputs ("logits": unbounded, shape (N,)
or (N, 1)) and returns batch-mean scalars that the respective player *minimises*.
Argument order is always real first. Only numerically stable forms are used
(softplus / logsigmoid), with the probability form written beside them.

    d_loss(real_logits, fake_logits)   discriminator objective
    g_loss(fake_logits)                generator objective
    penalty(D, real, fake)             regulariser added to d_loss (zero by default)
    divergence(real_logits, fake_logits)
                                       the divergence the current critic implies
    after_d_step(D)                    constraint applied after each critic step

References
  Goodfellow et al. 2014, "Generative Adversarial Nets" (minimax, non-saturating).
  Nowozin, Cseke & Tomioka 2016, "f-GAN", Tables 1 and 2 (fgan).
  Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (wasserstein).
  Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (wgan_gp).
  Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization" (hinge).
  Mao et al. 2017, "Least Squares Generative Adversarial Networks" (lsgan).
  Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually
  Converge?" (the R1 penalty, applied by the loop: GAN(r1_gamma=..., r1_every=...)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG2 = math.log(2.0)
LOG4 = math.log(4.0)


def _flat(logits: Tensor) -> Tensor:
    """Accept (N,) or (N, 1) critic outputs; return (N,)."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    if logits.dim() != 1:
        raise ValueError(
            f"critic outputs must have shape (N,) or (N, 1), got {tuple(logits.shape)}")
    return logits


def at_least_fp32(x: Tensor) -> Tensor:
    """fp16/bf16 (autocast outputs) as fp32; fp32 and fp64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class GANLoss(nn.Module):
    """Base class of the loss plugins. Subclasses implement d_loss and g_loss."""

    #: Generator steps-per-critic-step and optimiser defaults live in the loss's YAML.
    name: str = "gan"
    #: The divergence ``divergence()`` estimates (a ``ganzoo.theory.INTEGRANDS`` key, or
    #: "w1") and its constant: divergence() -> target_scale * D_target at the optimum.
    #: ``ganzoo.theory.reference_divergence`` computes the true value from densities.
    target: str | None = None
    target_scale: float = 1.0

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """Regulariser on samples, added to the critic loss. None by default."""
        return real.new_zeros(())

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The divergence between data and generator that the current critic implies."""
        raise NotImplementedError

    def after_d_step(self, D: nn.Module) -> None:
        """Constraint applied to the critic after each of its optimiser steps."""

    @property
    def divergence_hint(self) -> str | None:
        """What to try when this loss stops as non-finite; None when nothing specific."""
        return None

    @property
    def uses_gradient_penalty(self) -> bool:
        return False

    def extra_repr(self) -> str:
        return self.name


class Minimax(GANLoss):
    """Goodfellow et al. 2014, Eq. 1: the original two-player game V(D, G).

    D maximises E_P[log D(x)] + E_Q[log(1 - D(x))] with D = sigmoid(logit);
    G minimises E_Q[log(1 - D(G(z)))]. This generator objective *saturates*: when D
    confidently rejects fakes (logit -> -inf) its gradient vanishes like sigmoid(logit).

    Optimal critic D*(x) = p/(p+q); then -min d_loss = 2 JS(P||Q) - log 4 (Thm. 1).
    ``divergence`` returns the implied JS(P||Q) in nats, (log 4 - d_loss) / 2.
    """

    name = "minimax"
    target, target_scale = "js", 0.5  # Nowozin's js f integrates to 2 JS

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = _flat(real_logits), _flat(fake_logits)
        # -log sigmoid(r) - log(1 - sigmoid(f))
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        # log(1 - sigmoid(f)) = -softplus(f)
        return -F.softplus(_flat(fake_logits)).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * (LOG4 - self.d_loss(real_logits, fake_logits))


class NonSaturating(Minimax):
    """Goodfellow et al. 2014, Sec. 3: same D; G maximises log D(G(z)) instead.

    Same fixed point as minimax, but strong gradients early in training.
    """

    name = "nonsaturating"

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(-_flat(fake_logits)).mean()  # -log sigmoid(D(G(z)))


# --- f-GAN ------------------------------------------------------------------------------
# For each f-divergence of Nowozin et al. 2016 (Table 2): the output activation g_f, the
# composition f*(g_f(v)) written in stable form, the generator f of Table 1, and its
# derivative f' (the optimal critic T*(x) = f'(p(x)/q(x))). The critic is T = g_f(V).
# ``exp_g_loss`` names the generator objectives whose loss grows exponentially as V falls
# (-g_f(V) for "practical", -f*(g_f(V)) for "saddle"); the optimal critic is V -> -inf
# wherever the data density vanishes, so those losses can overflow there.


def _f_js(u: Tensor) -> Tensor:
    return -(u + 1) * torch.log((1 + u) / 2) + torch.xlogy(u, u)


F_DIVERGENCES: dict[str, dict] = {
    "kl": dict(
        activation=lambda v: v,
        conj_act=lambda v: torch.exp(v - 1),  # f*(t) = exp(t - 1)
        f=lambda u: torch.xlogy(u, u),
        f_prime=lambda u: 1 + torch.log(u),
    ),
    "reverse_kl": dict(
        activation=lambda v: -torch.exp(-v),
        conj_act=lambda v: v - 1,  # f*(t) = -1 - log(-t), t = -exp(-v)
        f=lambda u: -torch.log(u),
        f_prime=lambda u: -1 / u,
        exp_g_loss=("practical",),
    ),
    "pearson": dict(
        activation=lambda v: v,
        conj_act=lambda v: 0.25 * v * v + v,  # f*(t) = t^2/4 + t
        f=lambda u: (u - 1) ** 2,
        f_prime=lambda u: 2 * (u - 1),
    ),
    "neyman": dict(
        activation=lambda v: 1 - torch.exp(-v),
        conj_act=lambda v: 2 - 2 * torch.exp(-0.5 * v),  # f*(t) = 2 - 2 sqrt(1 - t)
        f=lambda u: (1 - u) ** 2 / u,
        f_prime=lambda u: 1 - 1 / u**2,
        exp_g_loss=("practical", "saddle"),
    ),
    "squared_hellinger": dict(
        activation=lambda v: 1 - torch.exp(-v),
        conj_act=lambda v: torch.expm1(v),  # f*(t) = t / (1 - t)
        f=lambda u: (torch.sqrt(u) - 1) ** 2,
        f_prime=lambda u: 1 - 1 / torch.sqrt(u),
        exp_g_loss=("practical",),
    ),
    "js": dict(
        activation=lambda v: LOG2 - F.softplus(-v),  # log 2 - log(1 + exp(-v))
        conj_act=lambda v: F.softplus(v) - LOG2,  # f*(t) = -log(2 - exp(t))
        f=_f_js,
        f_prime=lambda u: torch.log(2 * u / (1 + u)),
    ),
    "gan": dict(
        activation=lambda v: -F.softplus(-v),  # log sigmoid(v)
        conj_act=lambda v: F.softplus(v),  # f*(t) = -log(1 - exp(t))
        f=lambda u: torch.xlogy(u, u) - (u + 1) * torch.log(u + 1),
        f_prime=lambda u: torch.log(u / (u + 1)),
    ),
    "total_variation": dict(
        activation=lambda v: 0.5 * torch.tanh(v),
        conj_act=lambda v: 0.5 * torch.tanh(v),  # f*(t) = t
        f=lambda u: 0.5 * torch.abs(u - 1),
        f_prime=lambda u: 0.5 * torch.sign(u - 1),
    ),
}


class FGAN(GANLoss):
    """Nowozin et al. 2016: variational divergence minimisation.

    F(V) = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))]; the critic maximises F, so
    d_loss = -F. With the optimal critic T* = g_f(V*) = f'(p/q), F equals
    D_f(P||Q) = sum_x q(x) f(p(x)/q(x)) with f from Table 1 (so ``js`` gives 2 JS and
    ``gan`` gives 2 JS - log 4). ``divergence`` returns the implied D_f, i.e. F.

    Generator objective (``generator``):
      ``practical`` (default, Sec. 3.2): maximise E_Q[g_f(V(G(z)))], strong early
        gradients. Its fixed point is in general *not* the minimiser of D_f: with the
        optimal critic its pathwise gradient lacks the factor p/q of the saddle one
        (for ``kl`` it descends KL(Q||P); for ``gan`` it is the non-saturating GAN).
      ``saddle`` (Eq. 6, Algorithm 1): minimise F itself, i.e. maximise
        E_Q[f*(g_f(V(G(z))))]; with the optimal critic this descends D_f(P||Q_theta).
    """

    name = "fgan"

    def __init__(self, divergence: str = "js", generator: str = "practical") -> None:
        super().__init__()
        if divergence not in F_DIVERGENCES:
            raise ValueError(
                f"loss.divergence: unknown f-divergence {divergence!r}; "
                f"choose one of {', '.join(F_DIVERGENCES)}"
            )
        if generator not in ("practical", "saddle"):
            raise ValueError(f"loss.generator must be 'practical' or 'saddle', got {generator!r}")
        self.divergence_name = divergence
        self.generator_objective = generator

    @property
    def target(self) -> str:
        return self.divergence_name

    def activation(self, logits: Tensor) -> Tensor:
        """g_f: maps a raw logit into the domain of f*."""
        return F_DIVERGENCES[self.divergence_name]["activation"](_flat(logits))

    def conjugate_of_activation(self, logits: Tensor) -> Tensor:
        """f*(g_f(v)), computed in closed form rather than by composition."""
        return F_DIVERGENCES[self.divergence_name]["conj_act"](_flat(logits))

    def f(self, u: Tensor) -> Tensor:
        """The generator function f of Table 1: D_f(P||Q) = E_Q[f(p/q)]."""
        return F_DIVERGENCES[self.divergence_name]["f"](u)

    def f_prime(self, u: Tensor) -> Tensor:
        """f'(u): the optimal critic is T*(x) = f'(p(x)/q(x))."""
        return F_DIVERGENCES[self.divergence_name]["f_prime"](u)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real_term = self.activation(real_logits).mean()
        return self.conjugate_of_activation(fake_logits).mean() - real_term

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        if self.generator_objective == "saddle":
            return -self.conjugate_of_activation(fake_logits).mean()  # the E_Q part of F
        return -self.activation(fake_logits).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return -self.d_loss(real_logits, fake_logits)

    @property
    def divergence_hint(self) -> str | None:
        exp_losses = F_DIVERGENCES[self.divergence_name].get("exp_g_loss", ())
        if self.generator_objective not in exp_losses:
            return None
        if "saddle" not in exp_losses:
            return (f"f-GAN {self.divergence_name}'s practical generator loss grows as "
                    "exp(-V(G(z))) and overflows where the data density vanishes; "
                    "loss.generator=saddle avoids it (docs/losses.md)")
        return (f"f-GAN {self.divergence_name}'s generator loss, practical or saddle, grows "
                "exponentially as V(G(z)) falls and overflows where the data density "
                "vanishes, where this divergence is infinite (docs/losses.md)")

    def extra_repr(self) -> str:
        return (f"fgan, divergence={self.divergence_name}, "
                f"generator={self.generator_objective}")


class Wasserstein(GANLoss):
    """Arjovsky et al. 2017: the critic estimates W1 = sup_{|f|_L<=1} E_P[f] - E_Q[f].

    The Lipschitz constraint is enforced by clipping every critic weight to
    [-clip, clip] after each critic step. ``divergence`` returns E_P[D] - E_Q[D], the
    W1 estimate (up to the critic's Lipschitz constant).
    """

    name = "wasserstein"
    target = "w1"

    def __init__(self, clip: float = 0.01) -> None:
        super().__init__()
        self.clip = clip

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _flat(fake_logits).mean() - _flat(real_logits).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_flat(fake_logits).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _flat(real_logits).mean() - _flat(fake_logits).mean()

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        if self.clip > 0:
            for p in D.parameters():
                p.clamp_(-self.clip, self.clip)


class WGANGP(Wasserstein):
    """Gulrajani et al. 2017, Algorithm 1: W1 critic with a two-sided gradient penalty.

    penalty = lambda * E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z),
    eps ~ U[0, 1] per sample, gradients flattened per sample. No weight clipping.
    """

    name = "wgan_gp"

    def __init__(self, gp_weight: float = 10.0) -> None:
        super().__init__(clip=0.0)
        self.gp_weight = gp_weight

    @property
    def uses_gradient_penalty(self) -> bool:
        return True

    def penalty(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
        x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        out = at_least_fp32(_flat(D(x_hat)))
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        norm = at_least_fp32(grad).flatten(1).norm(2, dim=1)  # (N,); fp32 under mixed precision
        return self.gp_weight * ((norm - 1) ** 2).mean()


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, SNGAN Eq. 16).

    D minimises E_P[max(0, 1 - D(x))] + E_Q[max(0, 1 + D(G(z)))]; G minimises
    -E_Q[D(G(z))]. The optimal critic is sign(p - q), where d_loss = 2 (1 - TV(P, Q));
    ``divergence`` returns the implied total variation distance 1 - d_loss / 2.
    """

    name = "hinge"
    target = "total_variation"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = _flat(real_logits), _flat(fake_logits)
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_flat(fake_logits).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 1 - 0.5 * self.d_loss(real_logits, fake_logits)


class LeastSquares(GANLoss):
    """Least squares GAN (Mao et al. 2017, Eq. 2) with target codes a, b, c.

    D minimises 1/2 E_P[(D(x) - b)^2] + 1/2 E_Q[(D(G(z)) - a)^2]; G minimises
    1/2 E_Q[(D(G(z)) - c)^2]. Defaults a = 0, b = c = 1 (the paper's experiments);
    a = -1, b = 1, c = 0 makes G minimise a Pearson chi^2 divergence (Sec. 3.2).

    Optimal critic D* = (b p + a q) / (p + q), where
    d_loss = (b - a)^2 / 4 - (b - a)^2 / 8 * Delta(P, Q) with the triangular
    discrimination Delta = integral (p - q)^2 / (p + q), in [0, 2]; ``divergence``
    returns the implied Delta = 2 - 8 d_loss / (b - a)^2.
    """

    name = "lsgan"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        if a == b:
            raise ValueError(f"loss.a and loss.b must differ (the codes for fake and real), "
                             f"both are {a}")
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = _flat(real_logits), _flat(fake_logits)
        return 0.5 * ((real - self.b) ** 2).mean() + 0.5 * ((fake - self.a) ** 2).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((_flat(fake_logits) - self.c) ** 2).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 2 - 8 * self.d_loss(real_logits, fake_logits) / (self.b - self.a) ** 2

    def extra_repr(self) -> str:
        return f"lsgan, a={self.a}, b={self.b}, c={self.c}"


def r1_penalty(D, real: Tensor, gamma: float) -> Tensor:
    """R1 (Mescheder et al. 2018, Eq. 9): gamma / 2 * E_P[||grad_x D(x)||^2].

    Penalises the critic's gradient on real data only; usable with any loss. ``D`` is
    any callable from images to logits (a conditional critic with its labels bound).
    """
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(at_least_fp32(_flat(D(x))).sum(), x, create_graph=True)
    return 0.5 * gamma * at_least_fp32(grad).flatten(1).pow(2).sum(dim=1).mean()  # fp32 under AMP
