"""The CIFAR ResNet G and D of WGAN-GP (Gulrajani et al. 2017, App. F) and SNGAN
(Miyato et al. 2018, App. B, Table 4).

Generator: z -> linear -> (width, 4, 4), then residual up-blocks
(BN-ReLU-upsample-conv3-BN-ReLU-conv3, shortcut upsample-conv1) doubling the side, then
BN-ReLU-conv3-tanh. Discriminator: an "optimised" first block and residual down-blocks
(ReLU-conv3-ReLU-conv3-avgpool, shortcut conv1-avgpool) down to 8x8, two more blocks at
8x8, ReLU, global sum pooling and a linear read-out. No normalisation in D (spectral
norm is applied on top by the config, ``model.spectral_norm``).

32x32 is the papers' network (three up-blocks); 16x16 and 64x64 use one block fewer or
more. ``num_classes > 0``: conditional batch norm in G and a projection head in D
(Miyato & Koyama 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.config import require_int
from ganzoo.nets.layers import (
    ConditionalBatchNorm2d,
    ProjectionHead,
    check_labels,
    class_count,
    image_size,
)

SIZES = (16, 32, 64)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:  # (N, cin, s, s) -> 2s
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if down or cin != cout else None
        self.down, self.first = down, first

    def forward(self, x: Tensor) -> Tensor:
        # The first ("optimised") block sees raw pixels: no ReLU before its convolution.
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        s = x
        if self.first:  # shortcut pools first, then the 1x1 conv (SNGAN's OptimizedBlock)
            s = self.skip(F.avg_pool2d(s, 2))
        elif self.skip is not None:
            s = self.skip(s)
        if self.down:
            h = F.avg_pool2d(h, 2)
            s = s if self.first else F.avg_pool2d(s, 2)
        return h + s


class ResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape: Sequence[int], width: int = 256,
                 conditional: bool = False, num_classes: int | None = 0) -> None:
        super().__init__()
        channels, side = image_size("resnet", data_shape, SIZES)
        self.latent_dim, self.data_shape = latent_dim, (channels, side, side)
        require_int("latent_dim", latent_dim, 1)
        require_int("width", width, 1)
        self.num_classes = class_count("resnet", conditional, num_classes)
        self.width = width
        self.linear = nn.Linear(latent_dim, width * 4 * 4)
        n_up = int(math.log2(side)) - 2
        self.blocks = nn.ModuleList(
            [UpBlock(width, width, self.num_classes) for _ in range(n_up)])
        self.bn = nn.BatchNorm2d(width)
        self.out = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(self.num_classes, y, "the resnet generator")
        h = self.linear(z).view(z.shape[0], self.width, 4, 4)  # (N, width, 4, 4)
        for block in self.blocks:
            h = block(h, y)  # side doubles
        return self.out(F.relu(self.bn(h))).tanh()  # (N, channels, side, side)


class ResNetDiscriminator(nn.Module):
    def __init__(self, data_shape: Sequence[int], width: int = 128,
                 conditional: bool = False, num_classes: int | None = 0) -> None:
        super().__init__()
        channels, side = image_size("resnet", data_shape, SIZES)
        self.data_shape = (channels, side, side)
        require_int("width", width, 1)
        self.num_classes = class_count("resnet", conditional, num_classes)
        n_down = int(math.log2(side)) - 3  # side -> 8x8
        blocks = [DownBlock(channels, width, down=True, first=True)]
        blocks += [DownBlock(width, width, down=True) for _ in range(n_down - 1)]
        blocks += [DownBlock(width, width, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = ProjectionHead(width, self.num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # (N, C, H, W) -> (N,)
        check_labels(self.num_classes, y, "the resnet discriminator")
        phi = F.relu(self.blocks(x)).sum(dim=(2, 3))  # (N, width): global sum pooling
        return self.head(phi, y)
