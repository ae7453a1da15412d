"""The classic objectives: Goodfellow's minimax game and its non-saturating variant,
the Wasserstein critic, hinge and least squares.

Goodfellow et al. 2014 (minimax, non-saturating); Arjovsky et al. 2017 (wasserstein);
Lim & Ye 2017 and Miyato et al. 2018 (hinge); Mao et al. 2017 (lsgan).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.losses.base import GANLoss, flat

LOG4 = math.log(4.0)


class Minimax(GANLoss):
    """Goodfellow et al. 2014, Eq. 1: the original two-player game V(D, G).

    D maximises E_P[log D(x)] + E_Q[log(1 - D(x))] with D = sigmoid(logit);
    G minimises E_Q[log(1 - D(G(z)))]. This generator objective *saturates*: when D
    confidently rejects fakes (logit -> -inf) its gradient vanishes like sigmoid(logit).

    Optimal critic D*(x) = p/(p+q); then -min d_loss = 2 JS(P||Q) - log 4 (Thm. 1).
    ``divergence`` returns the implied JS(P||Q) in nats, (log 4 - d_loss) / 2.
    """

    target, target_scale = "js", 0.5  # Nowozin's js f integrates to 2 JS

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = flat(real_logits), flat(fake_logits)
        # -log sigmoid(r) - log(1 - sigmoid(f))
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        # log(1 - sigmoid(f)) = -softplus(f)
        return -F.softplus(flat(fake_logits)).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * (LOG4 - self.d_loss(real_logits, fake_logits))


class NonSaturating(Minimax):
    """Goodfellow et al. 2014, Sec. 3: same D; G maximises log D(G(z)) instead.

    Same fixed point as minimax, but strong gradients early in training.
    """


    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        return F.softplus(-flat(fake_logits)).mean()  # -log sigmoid(D(G(z)))


class Wasserstein(GANLoss):
    """Arjovsky et al. 2017: the critic estimates W1 = sup_{|f|_L<=1} E_P[f] - E_Q[f].

    The Lipschitz constraint is enforced by clipping every critic weight to
    [-clip, clip] after each critic step (``clip=0``: no clipping; ``loss=wgan_gp`` is
    this objective with the gradient penalty ``penalty=gp`` instead, Gulrajani et al.
    2017). ``divergence`` returns E_P[D] - E_Q[D], the W1 estimate (up to the critic's
    Lipschitz constant).
    """

    target = "w1"

    def __init__(self, clip: float = 0.01) -> None:
        super().__init__()
        self.clip = clip

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return flat(fake_logits).mean() - flat(real_logits).mean()

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        return -flat(fake_logits).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return flat(real_logits).mean() - flat(fake_logits).mean()

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        if self.clip > 0:
            for p in D.parameters():
                p.clamp_(-self.clip, self.clip)


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, SNGAN Eq. 16).

    D minimises E_P[max(0, 1 - D(x))] + E_Q[max(0, 1 + D(G(z)))]; G minimises
    -E_Q[D(G(z))]. The optimal critic is sign(p - q), where d_loss = 2 (1 - TV(P, Q));
    ``divergence`` returns the implied total variation distance 1 - d_loss / 2.
    """

    target = "total_variation"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = flat(real_logits), flat(fake_logits)
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        return -flat(fake_logits).mean()

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


    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        if a == b:
            raise ValueError(f"loss.a and loss.b must differ (the codes for fake and real), "
                             f"both are {a}")
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = flat(real_logits), flat(fake_logits)
        return 0.5 * ((real - self.b) ** 2).mean() + 0.5 * ((fake - self.a) ** 2).mean()

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((flat(fake_logits) - self.c) ** 2).mean()

    def divergence(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 2 - 8 * self.d_loss(real_logits, fake_logits) / (self.b - self.a) ** 2

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, c={self.c}"
