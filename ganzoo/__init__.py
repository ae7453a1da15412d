"""ganzoo: a PyTorch Lightning GAN model zoo.

``load_generator`` (and ``ganzoo.sample.sample``) work without Lightning; the training
stack (``ganzoo.gan.GAN``) is imported only where it is used.
"""

from __future__ import annotations

from omegaconf import OmegaConf

__all__ = ["load_generator"]


def _model_classes(clusters: int | None, num_classes: int) -> int:
    """The classes a conditional model sees: the k-means clusters of the images when
    data.clusters is set, else the dataset's own data.num_classes."""
    return num_classes if clusters is None else clusters


def packed_shape(data_shape, pack: int) -> list[int]:
    """The critic's input shape for packs of ``pack`` samples (PacGAN): the first dimension
    (values or channels) times ``pack``. Here, without torch, for the config resolver;
    ``ganzoo.nets.pack`` uses it too."""
    shape = [int(s) for s in data_shape]
    return [shape[0] * int(pack), *shape[1:]]


def _when(condition, value):
    """``value`` if ``condition`` else null (e.g. clusters only for a conditional model)."""
    return value if condition else None


# Model and data configs read these resolvers (conf/model/*.yaml, conf/data/digits.yaml).
OmegaConf.register_new_resolver("ganzoo.classes", _model_classes, replace=True)
OmegaConf.register_new_resolver("ganzoo.packed", packed_shape, replace=True)
OmegaConf.register_new_resolver("ganzoo.when", _when, replace=True)


def __getattr__(name: str):
    if name == "load_generator":
        from ganzoo.sample import load_generator

        return load_generator
    raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")
