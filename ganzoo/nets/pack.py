"""Packing (Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial
networks"): the critic judges ``m`` samples at once.

Every critic outputs one logit per input; a packed critic takes m samples of the same
kind (all real or all generated) concatenated into one input: for vectors of d values an
input of m * d values, for images of C channels an image of m * C channels. So any loss
works unchanged on the packed critic: it sees one logit per *pack*, and the divergence it
estimates is between the m-fold products P^m and Q^m, which penalises a generator that
drops modes more strongly than P and Q themselves (Lin et al. 2018, Sec. 4).

A batch of B samples (B divisible by m) becomes B / m packs of consecutive samples:
pack j holds samples j*m, ..., j*m + m - 1 in that order. ``ganzoo.gan.GAN`` passes
[real; fake] through the critic in one call; since each half has B samples, every pack
lies within one half, and real and generated samples are never packed together.

Sample penalties (the WGAN-GP gradient penalty, R1) act on the packed critic's own inputs:
interpolation weights are drawn per pack and gradient norms are taken over the whole pack,
i.e. they are the usual penalties of a critic whose input space is the product space.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ganzoo import packed_shape

__all__ = ["Packed", "packed_shape"]


class Packed(nn.Module):
    """Wrap ``critic`` (built for inputs of ``packed_shape(data_shape, pack)``) so that it
    takes batches of single samples of shape ``data_shape`` and returns one logit per pack.
    """

    def __init__(self, critic: nn.Module, pack: int, data_shape: Sequence[int]) -> None:
        super().__init__()
        if pack < 1:
            raise ValueError(f"model.pack must be >= 1, got {pack}")
        self.critic, self.pack = critic, pack
        self.data_shape = tuple(int(s) for s in data_shape)
        self.num_classes = 0  # a conditional critic is not packed (see ganzoo.config)

    def pack_batch(self, x: Tensor) -> Tensor:
        """(B, d) -> (B/m, m*d); (B, C, H, W) -> (B/m, m*C, H, W); pack j = samples jm..jm+m-1."""
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"model.pack={self.pack}: a batch of {n} samples does not split "
                             f"into packs of {self.pack}")
        return x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def forward(self, x: Tensor) -> Tensor:  # (B, *data_shape) -> (B / m,)
        return self.critic(self.pack_batch(x))

    def pointwise(self, x: Tensor) -> Tensor:
        """The critic's output on packs of m copies of each point: (N, *data_shape) -> (N,).

        What ``samples.png`` shows as the critic's value at a point.
        """
        return self(x.repeat_interleave(self.pack, dim=0))

    def extra_repr(self) -> str:
        return f"pack={self.pack}"
