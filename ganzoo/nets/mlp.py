"""Multilayer perceptrons for low-dimensional (toy) data.

The generator maps z ~ N(0, I) to a point of shape ``data_shape``; the
discriminator maps a point to one unbounded logit. Widths and depths follow the
toy-data GAN literature (e.g. VEEGAN / PacGAN use 3-4 hidden layers of a few hundred
units). ``activation="maxout"`` makes every hidden layer a maxout layer of ``pieces``
affine pieces (``ganzoo.nets.maxout``), the critic of the PacGAN 2-D experiments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganzoo.config import require_int
from ganzoo.nets.maxout import Maxout

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "elu": lambda: nn.ELU(),
    "maxout": None,  # the layer itself is the non-linearity (ganzoo.nets.maxout.Maxout)
}


def _mlp(in_dim: int, hidden_dim: int, n_layers: int, out_dim: int, activation: str,
         batch_norm: bool, pieces: int = 5) -> nn.Sequential:
    require_int("hidden_dim", hidden_dim, 1)
    require_int("n_layers", n_layers, 0)
    if activation == "maxout":
        require_int("pieces", pieces, 1)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"model.activation: unknown {activation!r}; choose one of "
                         f"{', '.join(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(n_layers):
        if activation == "maxout":
            layers.append(Maxout(dim, hidden_dim, pieces))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
        else:
            layers.append(nn.Linear(dim, hidden_dim))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(_ACTIVATIONS[activation]())
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape: Sequence[int], hidden_dim: int = 256,
                 n_layers: int = 3, activation: str = "relu", batch_norm: bool = False) -> None:
        super().__init__()
        self.latent_dim = require_int("latent_dim", latent_dim, 1)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.net = _mlp(latent_dim, hidden_dim, n_layers, math.prod(self.data_shape),
                        activation, batch_norm)

    def forward(self, z: Tensor) -> Tensor:  # (N, latent) -> (N, *data_shape)
        return self.net(z).view(z.shape[0], *self.data_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, data_shape: Sequence[int], hidden_dim: int = 256, n_layers: int = 3,
                 activation: str = "leaky_relu", batch_norm: bool = False,
                 pieces: int = 5) -> None:
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        self.net = _mlp(math.prod(self.data_shape), hidden_dim, n_layers, 1, activation,
                        batch_norm, pieces)

    def forward(self, x: Tensor) -> Tensor:  # (N, *data_shape) -> (N,)
        return self.net(torch.flatten(x, 1))[:, 0]
