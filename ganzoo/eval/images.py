"""Evaluation on images: FID, KID and IS (``metrics.*``, ``ganzoo.metrics.images``) and
an 8x8 grid of samples from fixed noise as the picture of each evaluation.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ganzoo.metrics.images import (
    INCEPTION_FILE,
    RESIZE_MODES,
    ImageMetrics,
    _fingerprint,
    load_inception,
)


class ImageEvaluator:
    """FID, KID and IS as ``metrics`` (the ``metrics`` config node) asks, on the EMA
    generator against the datamodule's ``real_images``; the feature extractor is loaded at
    ``setup``, once the data is known to be there."""

    def __init__(self, metrics=None, seed: int = 0) -> None:
        self.config, self.seed = metrics, seed
        self.metrics: ImageMetrics | None = None

    def setup(self, datamodule) -> None:
        from ganzoo.config import ConfigError

        if self.metrics is not None:
            return
        if not callable(getattr(datamodule, "real_images", None)):
            raise ConfigError(f"eval=images: {type(datamodule).__name__} has no real_images(n, "
                              "batch_size) to compare with (the datamodule contract)")
        self.metrics = image_metrics(self.config, datamodule)

    @property
    def protocol(self) -> dict:
        """How the last scores were measured (metrics.json's eval/protocol)."""
        return self.metrics.protocol if self.metrics is not None else {}

    def __call__(self, module) -> dict[str, float]:
        return self.metrics(module) if self.metrics is not None else {}

    def plot(self, path, module, title: str = "") -> None:
        """samples.png: an 8x8 grid of samples from fixed noise, each tile upscaled to
        about 64 px; if conditional, the classes in turn, or with data.clusters clusters
        drawn by their shares, and each tile names its class ("3") or k-means cluster
        ("c3": a cluster of the training images, not a digit class)."""
        from ganzoo.plots import image_grid

        labels = module.default_labels(64, seed=self.seed)
        fake = module.generate(64, seed=self.seed, labels=labels)
        prefix = "c" if getattr(module, "label_prior", None) is not None else ""
        image_grid(fake, labels, prefix).save(path, format="PNG")


def image_metrics(cfg, datamodule) -> ImageMetrics | None:
    """The run's image metrics (``cfg`` is the ``metrics`` node), or None when all are
    off or the Inception weights cannot be had. Bad values raise ConfigError."""
    from ganzoo.config import ConfigError

    if cfg is None or not any(bool(cfg.get(k, False)) for k in ("fid", "kid", "is")):
        return None
    for key in ("n_samples", "batch_size", "kid_subsets", "kid_subset_size", "is_splits"):
        value = cfg.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ConfigError(f"metrics.{key} must be an integer >= 2, got {value!r}")
    resize = cfg.get("resize", "antialias")
    spec = cfg.get("extractor", "inception")
    if spec == "inception":
        if resize not in RESIZE_MODES:
            raise ConfigError(f"metrics.resize must be one of {', '.join(RESIZE_MODES)}, "
                              f"got {resize!r}")
        weights = cfg.get("inception_weights")
        if weights is not None:
            weights = str(Path(str(weights)).expanduser())
            if not Path(weights).is_file():
                raise ConfigError(f"metrics.inception_weights: no file {weights} (a copy "
                                  f"of {INCEPTION_FILE})")
        extractor = load_inception(weights, resize)
        if extractor is None:
            return None
        name, resize_text = "inception-v3-compat", RESIZE_MODES[resize]
    else:
        import hydra

        try:
            extractor = hydra.utils.instantiate(spec)
        except Exception as exc:  # noqa: BLE001 - the user's module, any error
            raise ConfigError(f"metrics.extractor: {exc.__cause__ or exc}") from None
        if not isinstance(extractor, nn.Module):
            raise ConfigError(f"metrics.extractor must build an nn.Module, got "
                              f"{type(extractor).__name__}")
        target = spec.get("_target_", type(extractor).__qualname__)
        name = f"{target}@{_fingerprint(extractor)}"
        resize_text = "none (the extractor's own)"
    return ImageMetrics(datamodule, extractor, name, resize_text, fid=bool(cfg.get("fid")),
               kid=bool(cfg.get("kid")), inception_score=bool(cfg.get("is")),
               n_samples=cfg.n_samples, batch_size=cfg.batch_size,
               cache_dir=cfg.get("cache_dir"), kid_subsets=cfg.kid_subsets,
               kid_subset_size=cfg.kid_subset_size, is_splits=cfg.is_splits,
               seed=int(cfg.get("seed", 0) or 0))
