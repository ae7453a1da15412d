"""Relativistic losses: the critic judges how much more real a real sample looks than a
fake one, and the generator is trained on the same comparison reversed. Both players see
both batches, so ``g_loss`` uses the real logits (``needs_real_logits``).

With C the critic's raw output and softplus(t) = -log sigmoid(-t):

  RSGAN / RpGAN (Jolicoeur-Martineau 2018, Eq. 6 and 7; "relativistic pairing" in
  Huang et al. 2024, R3GAN): pairs (x_r, x_f) of one batch, in order,
      L_D = E softplus(C(x_f) - C(x_r)),    L_G = E softplus(C(x_r) - C(x_f)).
  RaGAN (relativistic average, Jolicoeur-Martineau 2018, Eq. 10): each sample against
  the mean of the other batch,
      L_D = E_r softplus(-(C_r - mean C_f)) + E_f softplus(C_f - mean C_r),
      L_G = E_f softplus(-(C_f - mean C_r)) + E_r softplus(C_r - mean C_f).

Jolicoeur-Martineau (2020, "On Relativistic f-Divergences") shows the critic's optimum
estimates a relativistic divergence that is zero exactly when the distributions match;
no closed-form density functional is logged here (``divergence()`` returns None).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ganzoo.losses.base import GANLoss, at_least_fp32, flat


def _pair(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    r, f = at_least_fp32(flat(real_logits)), at_least_fp32(flat(fake_logits))
    if r.shape != f.shape:
        raise ValueError(f"relativistic pairs need as many real as fake logits, got "
                         f"{r.shape[0]} and {f.shape[0]}")
    return r, f


class RelativisticPairing(GANLoss):
    """RSGAN, also R3GAN's RpGAN: each real sample against the fake of the same index."""

    needs_real_logits = True
    divergence_hint = "a zero-centred penalty on both sides helps it converge: penalty=r1r2"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        r, f = _pair(real_logits, fake_logits)
        return F.softplus(f - r).mean()  # -log sigmoid(C_r - C_f)

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        if real_logits is None:
            raise ValueError("relativistic g_loss needs the real logits")
        r, f = _pair(real_logits, fake_logits)
        return F.softplus(r - f).mean()  # -log sigmoid(C_f - C_r)


class RelativisticAverage(GANLoss):
    """RaGAN (RaSGAN): each sample against the mean critic output of the other batch."""

    needs_real_logits = True

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        r, f = at_least_fp32(flat(real_logits)), at_least_fp32(flat(fake_logits))
        return F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean()

    def g_loss(self, real_logits: Tensor | None, fake_logits: Tensor) -> Tensor:
        if real_logits is None:
            raise ValueError("relativistic g_loss needs the real logits")
        r, f = at_least_fp32(flat(real_logits)), at_least_fp32(flat(fake_logits))
        return F.softplus(-(f - r.mean())).mean() + F.softplus(r - f.mean()).mean()
