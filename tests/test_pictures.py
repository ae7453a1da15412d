"""The pictures of a run: what they show and that they stay comparable (cheap: no training)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo.distributions import ring
from ganzoo.eval.images import ImageEvaluator
from ganzoo.eval.toy import ToyEvaluator
from ganzoo.generation import Generation
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


class Digits(nn.Module):
    """A 16x16 generator, conditional on ``num_classes`` labels when it has them."""

    def __init__(self, num_classes: int | None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.tanh(self.w * z[:, :1, None, None]).expand(-1, 1, 16, 16)
        return x if y is None else x * 0 + (y[:, None, None, None] - 1.0) / 2


class Module(Generation):
    def __init__(self, num_classes: int | None, prior: torch.Tensor | None = None) -> None:
        self.latent_dim, self.num_classes, self.label_prior = 4, num_classes, prior
        self.generator, self.generator_ema = Digits(num_classes), None
        self.device = torch.device("cpu")


def _grid(tmp_path, module) -> Image.Image:
    ImageEvaluator().plot(tmp_path / "g.png", module)
    with Image.open(tmp_path / "g.png") as image:
        return image.convert("RGB")


def _has_label_text(image: Image.Image) -> bool:
    """Whether the label colour (yellow, anti-aliased on black) is in the picture: the
    samples themselves are grey."""
    return any(r > 200 and g > 150 and b < 80 for _, (r, g, b) in image.getcolors(1 << 20))


@pytest.mark.parametrize("prior", [None, torch.tensor([0.2, 0.5, 0.3])])
def test_digits_grid_is_upscaled_and_names_each_tiles_label(tmp_path, prior):
    module = Module(3, prior)
    labels = module.default_labels(64, seed=0)
    assert torch.equal(module.generate(64, seed=0), module.generate(64, seed=0, labels=labels))
    if prior is None:
        assert labels.tolist() == [i % 3 for i in range(64)]  # the classes in turn
    image = _grid(tmp_path, module)
    # 8 tiles of 16 px x 4 (nearest neighbour) plus 2 px padding on each side.
    assert image.size == (8 * 66 + 2, 8 * 66 + 2)
    first_tile = image.crop((2, 2, 66, 66))
    assert _has_label_text(first_tile)


def test_an_unconditional_grid_has_no_labels(tmp_path):
    image = _grid(tmp_path, Module(None))
    assert image.size == (530, 530)
    assert not _has_label_text(image)
