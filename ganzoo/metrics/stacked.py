"""Mode collapse on stacked digit images: the Stacked-MNIST protocol.

A classifier labels each of the three channels of every generated sample (Srivastava et
al. 2017, Sec. 5.2; Lin et al. 2018, Sec. 5.2): the argmax classes (a, b, c) are the
sample's mode, one of 10^3 = 1000. *Modes* is how many distinct triples occur among all
samples; *reverse KL* is KL(q || uniform) = sum_i q_i log(q_i * 1000) for q the triples'
histogram (log 1000 = 6.91 when every sample is one triple, 0 when all are equally
frequent); *confident* is the % of channels whose top class has probability >= the
confidence threshold (0.9), a check that the samples are digits at all.

*class KL* splits the reverse KL. For the histogram q of triples with channel marginals
q_1, q_2, q_3 (the classes' shares in each channel), exactly

    KL(q || uniform_1000) = sum_k KL(q_k || uniform_10) + KL(q || q_1 q_2 q_3),

the channels' uneven class shares plus their dependence (which also holds the
finite-sample floor: about 0.019 at 26,000 samples of an even, independent generator).
``eval/class_kl`` is the first term: what a generator that over- or under-draws some
digits loses, whatever it does with their combinations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganzoo.metrics import kl_to_uniform

N_MODES = 1000


def triples(probs: Tensor) -> Tensor:
    """Each sample's mode 100 a + 10 b + c from channel class probabilities (N, 3, 10)."""
    if probs.dim() != 3 or probs.shape[1:] != (3, 10):
        raise ValueError(f"probs: expected (N, 3, 10) channel probabilities, got "
                         f"{tuple(probs.shape)}")
    classes = probs.argmax(dim=2)  # (N, 3)
    return (classes * torch.tensor([100, 10, 1], device=classes.device)).sum(1)


def mode_counts(modes: Tensor) -> Tensor:
    """How many samples fall in each of the 1000 modes, as float64 (1000,)."""
    return torch.bincount(modes.reshape(-1).cpu(), minlength=N_MODES).double()


def stacked_metrics(probs: Tensor, confidence: float = 0.9) -> dict[str, float]:
    """eval/modes, eval/reverse_kl, eval/class_kl and eval/confident (%) of channel
    probabilities (N, 3, 10)."""
    counts = mode_counts(triples(probs))
    confident = (probs.max(dim=2).values >= confidence).double().mean()
    return {
        "eval/modes": float((counts > 0).sum()),
        "eval/reverse_kl": kl_to_uniform(counts),
        "eval/class_kl": class_kl(counts),
        "eval/confident": 100.0 * float(confident),
    }


def class_kl(counts: Tensor) -> float:
    """sum over the three channels of KL(channel's class shares || uniform over 10) of
    the triples' histogram ``counts`` (1000,): the part of the reverse KL that uneven
    class shares explain (module docstring)."""
    cube = torch.as_tensor(counts, dtype=torch.float64).reshape(10, 10, 10)  # [a, b, c]
    return sum(kl_to_uniform(cube.sum(dim=other)) for other in ((1, 2), (0, 2), (0, 1)))
