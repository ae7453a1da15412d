"""f-GAN (Nowozin, Cseke & Tomioka 2016): variational divergence minimisation, with the
output activations and conjugates of Table 2 and the generator functions of Table 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.losses.base import GANLoss, flat

LOG2 = math.log(2.0)

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
        return F_DIVERGENCES[self.divergence_name]["activation"](flat(logits))

    def conjugate_of_activation(self, logits: Tensor) -> Tensor:
        """f*(g_f(v)), computed in closed form rather than by composition."""
        return F_DIVERGENCES[self.divergence_name]["conj_act"](flat(logits))

    def f(self, u: Tensor) -> Tensor:
        """The generator function f of Table 1: D_f(P||Q) = E_Q[f(p/q)]."""
        return F_DIVERGENCES[self.divergence_name]["f"](u)

    def f_prime(self, u: Tensor) -> Tensor:
        """f'(u): the optimal critic is T*(x) = f'(p(x)/q(x))."""
        return F_DIVERGENCES[self.divergence_name]["f_prime"](u)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real_term = self.activation(real_logits).mean()
        return self.conjugate_of_activation(fake_logits).mean() - real_term

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
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
        return (f"divergence={self.divergence_name}, "
                f"generator={self.generator_objective}")
