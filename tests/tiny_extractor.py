"""A tiny, fixed feature extractor for FID/KID/IS tests (no download, a few ms)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyFeatures(nn.Module):
    """uint8 images (N, 3, H, W) -> (N, dim): pooled to 4x4, then a fixed random projection."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(3 * 4 * 4, dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, 48, generator=gen) / 48**0.5)
            self.proj.bias.zero_()
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += x.shape[0]
        x = nn.functional.adaptive_avg_pool2d(x.float() / 255.0, 4)  # (N, 3, 4, 4)
        return self.proj(x.flatten(1))  # (N, dim)
