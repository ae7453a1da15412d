"""Evaluation on stacked digits (``eval=stacked``): the Stacked-MNIST mode count.

``n_samples`` generated samples (26,000 as in Srivastava et al. 2017 and Lin et al. 2018)
from fixed noise, each channel classified by the cached digits classifier
(``ganzoo.metrics.digits``), scored by ``ganzoo.metrics.stacked``: ``eval/modes`` (of
1000), ``eval/reverse_kl``, ``eval/class_kl`` (the part of it from the channels' class
shares) and ``eval/confident``. The picture is an 8x8 grid of samples,
each tile named by the triple the classifier reads in it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganzoo.config import ConfigError, require_int
from ganzoo.metrics.digits import EPOCHS, DigitsClassifier, load_classifier
from ganzoo.metrics.stacked import N_MODES, stacked_metrics, triples


class StackedEvaluator:
    """Mode count, reverse KL (and its class-share part) and confident share of the EMA
    generator's samples."""

    n_modes = N_MODES

    def __init__(self, n_samples: int = 26_000, batch_size: int = 1024,
                 confidence: float = 0.9, cache_dir: str | Path = "~/.cache/ganzoo",
                 classifier_epochs: int = EPOCHS, seed: int = 0) -> None:
        require_int("eval.n_samples", n_samples, 1)
        require_int("eval.batch_size", batch_size, 1)
        require_int("eval.classifier_epochs", classifier_epochs, 1)
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
                or not 0 < confidence < 1:
            raise ConfigError(f"eval.confidence must be a number in (0, 1), got {confidence!r}")
        self.n_samples, self.batch_size, self.confidence = n_samples, batch_size, confidence
        self.cache_dir, self.classifier_epochs, self.seed = cache_dir, classifier_epochs, seed
        self.classifier: DigitsClassifier | None = None

    def setup(self, datamodule) -> None:
        """Check the data is three-channel images; load (or train and cache) the
        classifier before training starts."""
        shape = tuple(getattr(datamodule, "shape", ()))
        if len(shape) != 3 or shape[0] != 3:
            raise ConfigError(f"eval=stacked judges stacked digit images [3, side, side]; "
                              f"data {getattr(datamodule, 'name', '?')} has shape {list(shape)}")
        self._classifier()

    def _classifier(self) -> DigitsClassifier:
        if self.classifier is None:
            self.classifier = load_classifier(self.cache_dir, self.classifier_epochs)
        return self.classifier

    @property
    def protocol(self) -> dict:
        """How the figures were measured (metrics.json's eval/protocol)."""
        if self.classifier is None:
            return {}
        return {"n_fake": self.n_samples, "classifier": self.classifier.name,
                "classifier_accuracy": self.classifier.accuracy,
                "confidence": self.confidence}

    def probs(self, module, n: int) -> torch.Tensor:
        """Channel class probabilities (n, 3, 10) of n samples from fixed noise."""
        return self.read(module.generate(n, seed=self.seed, batch_size=self.batch_size))

    def read(self, fake: torch.Tensor) -> torch.Tensor:
        """Channel class probabilities (n, 3, 10) of samples (n, 3, S, S)."""
        n, side = fake.shape[0], fake.shape[-1]
        clf = self._classifier().to(fake.device)
        channels = fake.clamp(-1, 1).reshape(n * 3, 1, side, side)  # one digit each
        return clf.probs(channels).reshape(n, 3, 10)

    def __call__(self, module) -> dict[str, float]:
        return stacked_metrics(self.probs(module, self.n_samples), self.confidence)

    def plot(self, path, module, title: str = "") -> None:
        """samples.png: an 8x8 grid of samples from fixed noise, each tile named by the
        triple of digits the classifier reads in its three channels."""
        from ganzoo.plots import image_grid

        fake = module.generate(64, seed=self.seed)
        modes = triples(self.read(fake)).tolist()
        image_grid(fake, [f"{m:03d}" for m in modes]).save(path, format="PNG")
