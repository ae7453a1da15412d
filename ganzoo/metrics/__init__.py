"""Evaluation metrics."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def kl_to_uniform(counts: Tensor) -> float:
    """KL(q || uniform) = sum_i q_i log(q_i * bins) of the histogram ``counts`` (q its
    normalised counts): 0 when the bins are even, log(bins) when one bin holds all; inf
    for an empty histogram (the mode-coverage protocols' reverse KL)."""
    counts = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
    total = float(counts.sum())
    if total <= 0:
        return math.inf
    q = counts / total
    return float(torch.xlogy(q, q * counts.numel()).sum())
