"""The pictures of a run: what they show and that they stay comparable (cheap: no training)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ganzoo.distributions import ring
from ganzoo.eval.toy import ToyEvaluator
from ganzoo.plots import critic_range, plot_toy

PNG = b"\x89PNG\r\n\x1a\n"


class Scaled(nn.Module):
    """A critic V(x) = scale * x1: its range on the data is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x[:, :1]


def test_critic_range_is_a_quantile_of_the_logits_on_the_points():
    points = torch.stack([torch.linspace(-1, 1, 101), torch.zeros(101)], 1)
    # |V| = 2 |x1| over 101 evenly spaced x1: its 98% quantile is 2 * 0.98.
    assert critic_range(Scaled(), points) == pytest.approx(2 * 0.98, rel=1e-6)


def test_toy_heat_map_keeps_the_colour_range_of_the_first_picture(tmp_path):
    data = ring()
    evaluator = ToyEvaluator(data, n_eval=200, seed=0)
    D = Scaled()
    fake = data.sample(200, generator=torch.Generator().manual_seed(1))
    module = SimpleNamespace(discriminator=D, generate=lambda n, seed: fake)
    evaluator.plot(tmp_path / "a.png", module, "step 1")
    first = evaluator.critic_range
    real = data.sample(200, generator=torch.Generator().manual_seed(0))  # the evaluator's
    assert first == critic_range(D, torch.cat([real, fake]))
    with torch.no_grad():
        D.scale.fill_(50.0)  # the critic grows; the colours must not rescale
    evaluator.plot(tmp_path / "b.png", module, "step 2")
    assert evaluator.critic_range == first
    assert plot_toy(tmp_path / "c.png", real, real, D, vlim=first) == first
    for name in "abc":
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG


def test_one_dimensional_picture_has_no_colour_range(tmp_path):
    x = torch.randn(100, 1)
    assert plot_toy(tmp_path / "p.png", x, x, nn.Linear(1, 1)) is None
