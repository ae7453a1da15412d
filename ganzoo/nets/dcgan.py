"""DCGAN (Radford, Metz & Chintala 2016): all-convolutional G and D for small images.

Generator: z is projected to a 4x4 map by a transposed convolution, then each stride-2
4x4 transposed convolution doubles the side and halves the width, with batch norm and
ReLU, ending in tanh (images in [-1, 1]). Discriminator: the mirror image, stride-2 4x4
convolutions with LeakyReLU(0.2), no normalisation on the first layer, and a linear
read-out of the final 4x4 map (the paper's last 4x4 convolution).

Sides 16, 32 and 64 (the paper's 64x64 network has four up-samplings; 32x32 drops the
widest, 16x16 the two widest). ``num_classes > 0`` makes G class-conditional through
conditional batch norm and D a projection discriminator (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from ganzoo.config import require_int
from ganzoo.nets.layers import (
    ConditionalBatchNorm2d,
    ProjectionHead,
    check_labels,
    class_count,
    image_size,
    norm2d,
)

SIZES = (16, 32, 64)


def _init(module: nn.Module) -> None:
    """Sec. 4: all weights from a zero-centred normal with standard deviation 0.02."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape: Sequence[int], width: int = 64,
                 conditional: bool = False, num_classes: int | None = 0) -> None:
        super().__init__()
        channels, side = image_size("dcgan", data_shape, SIZES)
        self.latent_dim, self.data_shape = latent_dim, (channels, side, side)
        require_int("latent_dim", latent_dim, 1)
        require_int("width", width, 1)
        self.num_classes = class_count("dcgan", conditional, num_classes)
        n_up = int(math.log2(side)) - 2  # 4x4 -> side
        ch = width * 2 ** (n_up - 1)
        self.convs = nn.ModuleList([nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False)])
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(ch, self.num_classes)])
        for _ in range(n_up - 1):
            self.convs.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False))
            self.norms.append(ConditionalBatchNorm2d(ch // 2, self.num_classes))
            ch //= 2
        self.out = nn.ConvTranspose2d(ch, channels, 4, 2, 1)
        self.act = nn.ReLU()
        _init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(self.num_classes, y, "the dcgan generator")
        h = z[:, :, None, None]  # (N, latent, 1, 1)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.act(norm(conv(h), y))  # (N, C, 4 * 2^i, 4 * 2^i)
        return self.out(h).tanh()  # (N, channels, side, side)


class DCGANDiscriminator(nn.Module):
    def __init__(self, data_shape: Sequence[int], width: int = 64, norm: str = "batch",
                 conditional: bool = False, num_classes: int | None = 0) -> None:
        super().__init__()
        channels, side = image_size("dcgan", data_shape, SIZES)
        self.data_shape = (channels, side, side)
        require_int("width", width, 1)
        self.num_classes = class_count("dcgan", conditional, num_classes)
        n_down = int(math.log2(side)) - 2  # side -> 4x4
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=norm == "none"),
                       norm2d(norm, 2 * ch, "model.discriminator"), nn.LeakyReLU(0.2)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(ch * 4 * 4, self.num_classes)
        _init(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # (N, C, H, W) -> (N,)
        check_labels(self.num_classes, y, "the dcgan discriminator")
        return self.head(self.features(x).flatten(1), y)  # features: (N, ch, 4, 4)
