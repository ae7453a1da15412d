"""Top-k training (Sinha et al. 2020): the generator's loss keeps the fakes the critic scores
most real, on a schedule; off by default; refused where a loss pairs fakes with reals; kept
in the resume recipe."""

import functools

import pytest
import torch
from torch import nn

from ganzoo.checkpoint import CheckpointError, check_recipe
from ganzoo.gan import GAN
from ganzoo.losses import NonSaturating
from train import train

from .conftest import refusal


def _module(topk, warmup=0):
    opt = functools.partial(torch.optim.SGD, lr=0.1)
    return GAN(nn.Linear(2, 2), nn.Linear(2, 1), NonSaturating(), opt, opt, latent_dim=2,
               topk=topk, topk_warmup=warmup)


def test_kept_fraction_falls_linearly_over_the_warmup():
    gan = _module(0.5, warmup=4)
    kept = []
    for step in (0, 1, 2, 3, 4, 8):
        gan.g_step = step
        kept.append(gan.kept_fakes(10))
    # 10 * (1 - 0.5 * step / 4), rounded up: 10, 8.75, 7.5, 6.25, 5, then 5 for good
    assert kept == [10, 9, 8, 7, 5, 5]


def test_without_warmup_the_fraction_holds_from_the_first_step_and_keeps_one():
    gan = _module(0.3)
    assert gan.kept_fakes(10) == 3 and gan.kept_fakes(7) == 3  # ceil(2.1)
    assert _module(0.01).kept_fakes(10) == 1  # never an empty loss
    assert _module(1.0).kept_fakes(10) == 10
    assert _module(None).kept_fakes(10) == 10  # off


def test_top_k_keeps_the_highest_scored_fakes_and_sends_the_rest_no_gradient():
    gan = _module(0.5)
    logits = torch.tensor([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0], requires_grad=True)
    kept = gan.top_k(logits)
    assert sorted(kept.tolist()) == [4.0, 5.0, 6.0, 9.0]
    kept.sum().backward()
    assert logits.grad.tolist() == [0, 0, 1, 0, 1, 1, 0, 1]


def test_top_k_off_returns_the_logits_themselves():
    logits = torch.randn(6)
    assert _module(None).top_k(logits) is logits


def _g_loss_sizes(make_cfg, monkeypatch, out, *overrides):
    """The number of fake logits the generator's loss receives at each step of a run in
    ``out``."""
    sizes = []
    original = NonSaturating.g_loss

    def recording(self, real_logits, fake_logits):
        sizes.append(fake_logits.shape[0])
        return original(self, real_logits, fake_logits)

    monkeypatch.setattr(NonSaturating, "g_loss", recording)
    metrics = train(make_cfg("loss=nonsaturating", "data.batch_size=8", f"out_dir={out}",
                             *overrides))
    assert metrics["status"] == "completed"
    return sizes


def test_training_hands_the_generator_loss_the_kept_fakes(make_cfg, monkeypatch, tmp_path):
    sizes = functools.partial(_g_loss_sizes, make_cfg, monkeypatch)
    assert sizes(tmp_path / "off", "steps=3") == [8, 8, 8]  # off by default
    assert sizes(tmp_path / "half", "steps=3", "topk.keep=0.5") == [4, 4, 4]
    # warmup 2: 8 * (1, 0.75, 0.5) -> 8, 6, 4
    assert sizes(tmp_path / "ramp", "steps=4", "topk.keep=0.5", "topk.warmup=2") == [
        8, 6, 4, 4]


def test_with_a_packed_critic_whole_packs_are_kept(make_cfg, monkeypatch, tmp_path):
    # 8 samples in packs of 2: 4 critic scores, of which half are kept
    assert _g_loss_sizes(make_cfg, monkeypatch, tmp_path / "packed", "steps=2",
                         "model.pack=2", "topk.keep=0.5") == [2, 2]


@pytest.mark.parametrize("overrides, message", [
    ("topk.keep=0", "topk.keep must be a number in (0, 1] or null, got 0"),
    ("topk.keep=1.5", "topk.keep must be a number in (0, 1] or null, got 1.5"),
    ("topk.keep=most", "topk.keep must be a number in (0, 1] or null, got 'most'"),
    ("topk.keep=0.5 topk.warmup=-1", "topk.warmup must be >= 0, got -1"),
    ("topk.keep=0.5 topk.warmup=1.5", "topk.warmup must be an integer, got 1.5"),
    ("topk.keep=0.5 loss=rpgan",
     "topk.keep=0.5: top-k training drops fakes from the generator's loss, which "
     "RelativisticPairing pairs with real samples"),
])
def test_bad_top_k_settings_are_refused(make_cfg, overrides, message):
    assert refusal(make_cfg(*overrides.split())) == message


def _recipe_of(make_cfg, *overrides):
    from ganzoo.checkpoint import recipe_record

    return recipe_record(**make_cfg(*overrides).model.recipe)


def test_a_checkpoint_from_before_top_k_resumes_as_top_k_off(make_cfg, tmp_path):
    recipe = _recipe_of(make_cfg)
    old = {k: v for k, v in recipe.items() if k != "topk"}
    check_recipe({"ganzoo": {"recipe": old}}, recipe, tmp_path / "old.ckpt")  # accepted
    with pytest.raises(CheckpointError) as err:
        check_recipe({"ganzoo": {"recipe": old}}, _recipe_of(make_cfg, "topk.keep=0.5"),
                     tmp_path / "old.ckpt")
    assert str(err.value).startswith(
        f"{tmp_path / 'old.ckpt'} was trained with other settings (topk.keep: None there, "
        "0.5 here)")
