"""Adversarial loss plugins: each owns the mathematics of one GAN objective.

The contract is ``ganzoo.losses.base.GANLoss``; ``conf/loss/<name>.yaml`` builds one.

References
  Goodfellow et al. 2014, "Generative Adversarial Nets" (minimax, non-saturating).
  Nowozin, Cseke & Tomioka 2016, "f-GAN", Tables 1 and 2 (fgan).
  Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (wasserstein; with the gradient
  penalty of Gulrajani et al. 2017, ``ganzoo.penalties``, it is wgan_gp).
  Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization" (hinge).
  Mao et al. 2017, "Least Squares Generative Adversarial Networks" (lsgan).
  Jolicoeur-Martineau 2018, "The relativistic discriminator" (rsgan, ragan); Huang et al.
  2024, "The GAN is dead; long live the GAN!" (R3GAN: rpgan with penalty=r1r2).
"""

from ganzoo.losses.base import GANLoss, at_least_fp32, flat
from ganzoo.losses.classic import Hinge, LeastSquares, Minimax, NonSaturating, Wasserstein
from ganzoo.losses.fgan import F_DIVERGENCES, FGAN
from ganzoo.losses.relativistic import RelativisticAverage, RelativisticPairing

__all__ = ["F_DIVERGENCES", "FGAN", "GANLoss", "Hinge", "LeastSquares", "Minimax",
           "NonSaturating", "RelativisticAverage", "RelativisticPairing", "Wasserstein",
           "at_least_fp32", "flat"]
