"""ganzoo: a PyTorch Lightning GAN model zoo.

``load_generator`` (and ``ganzoo.sample.sample``) work without Lightning; the training
stack (``ganzoo.gan.GAN``) is imported only where it is used.
"""

from __future__ import annotations

__all__ = ["load_generator"]


def __getattr__(name: str):
    if name == "load_generator":
        from ganzoo.sample import load_generator

        return load_generator
    raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")
