"""Maxout units (Goodfellow et al. 2013, "Maxout Networks", Eq. 1).

Each of the ``out_features`` units is the largest of ``pieces`` affine functions of the
input, h_i(x) = max_j (x W_ij + b_ij). The critic of the VEEGAN / PacGAN 2-D experiments
(Lin et al. 2018, Sec. 5.1) is 3 maxout layers of 200 units with 5 pieces each, then a
linear logit: ``ganzoo.nets.mlp.MLPDiscriminator(activation="maxout", pieces=5)``.
"""

from __future__ import annotations

from torch import Tensor, nn


class Maxout(nn.Module):
    """Linear map to ``out_features * pieces`` values, then the max over each unit's pieces.

    The linear output is laid out unit-major: unit i owns columns
    i * pieces, ..., i * pieces + pieces - 1.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"maxout needs at least one piece per unit, got {pieces}")
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:  # (N, in) -> (N, out)
        h = self.linear(x).unflatten(-1, (self.out_features, self.pieces))  # (N, out, pieces)
        return h.amax(dim=-1)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, pieces={self.pieces}"
