"""Mode-collapse metrics on Gaussian mixtures: the VEEGAN / PacGAN protocol.

On (typically 2,500) generated samples: a sample is *high quality* if it lies within
3 standard deviations of its nearest mode; a mode is *covered* if at least one
high-quality sample is assigned to it; *reverse KL* is KL(p_hat || uniform) between the
distribution of high-quality samples over the modes and the uniform distribution
(Srivastava et al. 2017, Sec. 5.1; Lin et al. 2018, Sec. 5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganzoo.metrics import kl_to_uniform


def mode_metrics(samples: Tensor, means: Tensor, stds: Tensor) -> dict[str, float]:
    x = samples.detach().reshape(samples.shape[0], -1).float().cpu()
    means, stds = means.float().cpu(), stds.float().cpu()
    dist = torch.cdist(x, means)  # (N, M)
    nearest_d, nearest = dist.min(dim=1)
    hq = nearest_d <= 3 * stds[nearest]  # (N,)
    counts = torch.bincount(nearest[hq], minlength=means.shape[0]).double()
    return {
        "eval/modes": float((counts > 0).sum().item()),
        "eval/hq": 100.0 * counts.sum().item() / x.shape[0],
        "eval/reverse_kl": kl_to_uniform(counts),  # inf without a high-quality sample
    }
