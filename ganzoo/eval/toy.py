"""Evaluation on toy data with a known density: the VEEGAN / PacGAN mode-coverage
protocol (``ganzoo.metrics.toy``), the true value of the divergence the loss's critic
reports (``ganzoo.theory.reference_divergence``), and the picture of samples over the data
with the critic behind them (``ganzoo.plots.plot_toy``).
"""

from __future__ import annotations

import torch

from ganzoo.distributions import GaussianMixture
from ganzoo.metrics.toy import mode_metrics


class ToyEvaluator:
    """Figures on ``n_eval`` samples from fixed noise (seed ``seed``) against the mixture
    ``distribution`` the data is drawn from."""

    def __init__(self, distribution: GaussianMixture, n_eval: int = 2500, seed: int = 0) -> None:
        if n_eval < 1:
            raise ValueError(f"data.n_eval must be >= 1, got {n_eval}")
        self.distribution, self.n_eval, self.seed = distribution, n_eval, seed
        self.real = None  # training points shown in the picture (set up from the data)
        # The heat map's colour range, decided at the run's first picture and kept, so
        # the pictures of a run compare (``ganzoo.plots.critic_range``).
        self.critic_range: float | None = None

    @property
    def n_modes(self) -> int:
        return self.distribution.means.shape[0]

    def setup(self, datamodule) -> None:
        train_set = getattr(datamodule, "train_set", None)
        self.real = None if train_set is None else train_set[: self.n_eval]

    def __call__(self, module) -> dict[str, float]:
        """PacGAN-protocol metrics and, beside them, ``eval/divergence_ref``: the true value
        of what the loss's critic reports as ``train/divergence``, in the same units."""
        from ganzoo.theory import reference_divergence

        d = self.distribution
        fake = module.generate(self.n_eval, seed=self.seed)
        figures = mode_metrics(fake, d.means, d.stds)
        # A packed critic (PacGAN) reports a divergence between m-fold products of the
        # distributions, which this single-sample reference does not measure.
        packed = getattr(module.discriminator, "pack", 1) > 1
        ref = None if packed else reference_divergence(module.loss, d, fake, seed=self.seed)
        if ref is not None:
            figures["eval/divergence_ref"] = ref
        return figures

    def plot(self, path, module, title: str = "") -> None:
        """samples.png: generated points over the data, the critic as a heat map."""
        from ganzoo.plots import plot_toy

        fake = module.generate(self.n_eval, seed=self.seed)
        real = self.real
        if real is None:  # no training set at hand: fresh points, from their own stream
            real = self.distribution.sample(
                self.n_eval, generator=torch.Generator().manual_seed(self.seed))
        self.critic_range = plot_toy(path, real, fake, module.discriminator, title,
                                     density=lambda x: self.distribution.log_prob(x).exp(),
                                     vlim=self.critic_range)
