"""Noise, labels and samples of a GAN module: what training draws and what evaluation
and sampling get (``GAN`` mixes this in; it needs ``latent_dim``, ``num_classes``,
``label_prior``, ``prior``, ``generator``, ``generator_ema`` and ``device``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo import distributed
from ganzoo.nets.layers import draw_labels


class Generation:
    prior = None  # the latent prior (ganzoo.priors); None: z ~ N(0, I)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """The generator's input for n samples: standard normal draws, mapped by the
        latent prior (``ganzoo.priors``; none: the draws themselves)."""
        z = torch.randn(n, self.latent_dim, device=self.device, generator=generator)
        return z if self.prior is None else self.prior(z)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """Fake labels: by label_prior (the clusters' shares) or uniform; None if
        unconditional."""
        return draw_labels(n, self.num_classes, self.label_prior, generator, self.device)

    def training_noise(self, n: int) -> tuple[Tensor, Tensor | None]:
        """z and fake labels for this rank's n samples. Under DDP every rank draws the
        global batch's noise and keeps its slice, as one process would draw it."""
        y = distributed.draw_global(self.sample_labels, n)  # labels first, then z
        return distributed.draw_global(self.sample_z, n), y

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.generator(z) if y is None else self.generator(z, y)

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA generator once it holds averaged weights, else the raw one."""
        ema = self.generator_ema
        if ema is not None and int(ema.n_averaged) > 0:
            return ema.module
        return self.generator


    def default_labels(self, n: int, seed: int = 0) -> Tensor | None:
        """The labels ``generate(n, seed)`` makes when given none (None if unconditional):
        the classes in turn, or k-means clusters by their shares from their own stream;
        pictures read them to name what each sample is."""
        return draw_labels(n, self.num_classes, self.label_prior, device=self.device,
                           generator=torch.Generator(device=self.device).manual_seed(seed),
                           in_turn=self.label_prior is None)

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, batch_size: int = 4096,
                 labels: Tensor | None = None, raw: bool = False) -> Tensor:
        """n samples from fixed noise (the same seed gives the same points), from the EMA
        generator when there is one (``raw=True``: the trained generator itself).

        A conditional generator makes the classes ``labels`` (N,), by default
        0, 1, ..., num_classes - 1 in turn; when the labels are k-means clusters
        (data.clusters), by default clusters drawn in proportion to their shares (from
        their own stream: the seed gives the same z whatever the labels).
        """
        if labels is not None and not self.num_classes:
            raise ValueError("labels: this generator is not class-conditional")
        gen = torch.Generator(device=self.device).manual_seed(seed)
        if self.num_classes:
            labels = self.default_labels(n, seed) if labels is None else labels
            labels = torch.as_tensor(labels).to(self.device)
            if labels.shape != (n,):
                raise ValueError(f"labels: need {n} labels, got shape {tuple(labels.shape)}")
        G = self.generator if raw else self.sampling_generator
        z = self.sample_z(n, generator=gen)  # all at once: chunks never change the draws
        out = []
        for i in range(0, n, batch_size):
            y = None if labels is None else labels[i:i + batch_size]
            out.append(G(z[i:i + batch_size]) if y is None else G(z[i:i + batch_size], y))
        return torch.cat(out)
