"""Differentiable augmentation (ganzoo.augment, DiffAugment) and ADA's adaptive strength
(ganzoo.ada): each op against its definition, per-sample draws, gradients through T, the
loop's use of T (real and fake alike, penalties through T), exact resume, bad settings."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from ganzoo import augment as aug
from ganzoo.ada import ADA
from ganzoo.augment import DiffAugment
from ganzoo.checkpoint import CheckpointError, read_checkpoint
from ganzoo.gan import GAN
from ganzoo.losses import NonSaturating
from ganzoo.penalties import R1, GradientPenalty
from train import train

from .conftest import refusal
from .test_contracts import _doc_module

DIGITS = ("data=digits", "data.n_train=64", "data.batch_size=8", "data.clusters=4",
          "model.generator.width=8", "model.discriminator.width=8", "lr_decay=none")


def seeded(fn, seed=0):
    """fn(*args) with torch's global stream at ``seed`` (and left as it was)."""
    def call(*args):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return fn(*args)
    return call


# --- the ops against their definitions ---------------------------------------------------

def test_color_ops_follow_their_definitions():
    x = torch.tensor([[[[0.0, 1.0]], [[2.0, 3.0]], [[4.0, 8.0]]],
                      [[[-1.0, -1.0]], [[1.0, 1.0]], [[0.0, 3.0]]]])  # (2, 3, 1, 2)
    b = torch.tensor([0.25, -0.5])
    torch.testing.assert_close(aug.brightness(x, b), x + b.view(2, 1, 1, 1))
    s = torch.tensor([2.0, 0.0])  # sample 0: twice the deviation; sample 1: grey
    pixel_mean = torch.tensor([[[[2.0, 4.0]]], [[[0.0, 1.0]]]])  # each pixel's channel mean
    torch.testing.assert_close(aug.saturation(x, s), torch.cat(
        [pixel_mean[:1] + 2 * (x[:1] - pixel_mean[:1]), pixel_mean[1:].expand(1, 3, 1, 2)]))
    c = torch.tensor([0.5, 1.5])
    image_mean = torch.tensor([3.0, 0.5]).view(2, 1, 1, 1)  # mean over channels and pixels
    torch.testing.assert_close(aug.contrast(x, c),
                               image_mean + c.view(2, 1, 1, 1) * (x - image_mean))
    grey = torch.randn(2, 1, 3, 3)
    assert torch.equal(aug.saturation(grey, s), grey)  # one channel: nothing to saturate


@pytest.mark.parametrize("t_h, t_w", [(0, 0), (1, 0), (-2, 1), (2, -2), (-1, -1)])
def test_translation_is_the_rolled_image_with_zeros_shifted_in(t_h, t_w):
    x = torch.arange(1.0, 2 * 16 + 1).view(1, 2, 4, 4).repeat(2, 1, 1, 1)  # no zero pixel
    shift = torch.tensor([t_h, 0]), torch.tensor([t_w, 0])
    expected = torch.roll(x[:1], shifts=(-t_h, -t_w), dims=(2, 3))
    if t_h:  # the rows that wrapped around are zero instead
        expected[:, :, slice(4 - t_h, None) if t_h > 0 else slice(None, -t_h)] = 0
    if t_w:
        expected[:, :, :, slice(4 - t_w, None) if t_w > 0 else slice(None, -t_w)] = 0
    out = aug.translate(x, *shift)
    assert torch.equal(out[:1], expected)
    assert torch.equal(out[1:], x[1:])  # the second sample's own (zero) shift


def test_cutout_zeroes_a_half_size_square_clipped_at_the_border():
    x = torch.ones(3, 2, 8, 8)
    out = aug.cutout(x, torch.tensor([4, 0, 8]), torch.tensor([3, 5, 8]))
    expected = torch.ones(3, 2, 8, 8)
    expected[0, :, 2:6, 1:5] = 0  # a 4x4 square, rows c - 2 ... c + 1
    expected[1, :, 0:2, 3:7] = 0  # centred on the top row: its lower half
    expected[2, :, 6:8, 6:8] = 0  # centred beyond the corner: one quarter
    assert torch.equal(out, expected)
    assert aug.cutout_size(16, 16) == (8, 8) and aug.cutout_size(7, 5) == (4, 3)


@pytest.mark.parametrize("op, params", [
    (aug.brightness, (torch.tensor([0.3, -0.2]),)),
    (aug.saturation, (torch.tensor([1.7, 0.4]),)),
    (aug.contrast, (torch.tensor([0.6, 1.4]),)),
    (aug.translate, (torch.tensor([1, -2]), torch.tensor([-1, 0]))),
    (aug.cutout, (torch.tensor([1, 4]), torch.tensor([2, 0]))),
])
def test_every_op_is_differentiable_in_its_input(op, params):
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    params = tuple(p.double() if p.is_floating_point() else p for p in params)
    assert torch.autograd.gradcheck(lambda x: op(x, *params), (x,))


@pytest.mark.parametrize("policy", ["color", "translation", "cutout",
                                    "color,translation,cutout"])
def test_the_augmentation_as_a_whole_is_differentiable(policy):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded(DiffAugment(policy)), (x,))


# --- the random parameters -----------------------------------------------------------------

def test_parameters_are_drawn_per_sample_from_the_global_stream():
    x = torch.randn(64, 3, 16, 16)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        b, s, c = torch.rand(64) - 0.5, torch.rand(64) * 2, torch.rand(64) + 0.5
        t_h, t_w = torch.randint(-2, 3, (64,)), torch.randint(-2, 3, (64,))
        c_h, c_w = torch.randint(0, 17, (64,)), torch.randint(0, 17, (64,))
    expected = aug.cutout(aug.translate(aug.contrast(aug.saturation(
        aug.brightness(x, b), s), c), t_h, t_w), c_h, c_w)
    assert torch.equal(seeded(DiffAugment(), 1)(x), expected)
    assert len(set(b.tolist())) == 64 and len(set(t_h.tolist())) == 5  # per sample


def test_identical_images_are_augmented_independently():
    x = torch.randn(1, 3, 16, 16).repeat(256, 1, 1, 1)
    distinct = {policy: len(torch.unique(seeded(DiffAugment(policy))(x).flatten(1), dim=0))
                for policy in aug.POLICIES}
    # color: continuous draws; translation: all 5 x 5 shifts; cutout: of 17 x 17 squares
    assert distinct["color"] == 256 and distinct["translation"] == 25
    assert distinct["cutout"] > 150


def test_parameter_ranges():
    x = torch.zeros(4000, 1, 16, 16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        b = aug.uniform(x, -0.5, 0.5)
        t_h, _ = aug._shifts(x)
        c_h, _ = aug._centres(x)
    assert -0.5 <= b.min() < -0.49 and 0.49 < b.max() < 0.5
    assert sorted(set(t_h.tolist())) == [-2, -1, 0, 1, 2]  # 16 / 8 pixels either way
    assert sorted(set(c_h.tolist())) == list(range(17))  # an 8-pixel square, DiffAugment's


# --- the loop: T on real and fake alike, penalties through T -------------------------------

class Linear(nn.Module):
    """D(x) = <v, x>: its input gradient is v wherever it is taken."""

    def __init__(self, shape):
        super().__init__()
        self.v = nn.Parameter(torch.randn(shape))

    def forward(self, x):
        return (x * self.v).flatten(1).sum(1)


def _module(augment, penalty=None, shape=(2, 8, 8)):
    opt = functools.partial(torch.optim.SGD, lr=0.1)
    return GAN(nn.Linear(2, 1), Linear(shape), NonSaturating(), opt, opt, latent_dim=2,
               penalty=penalty, augment=augment)


def test_the_critic_sees_real_and_fake_through_one_t():
    gan = _module(DiffAugment())
    real, fake = torch.randn(5, 2, 8, 8), torch.randn(5, 2, 8, 8)
    T = gan.augment
    expected = seeded(lambda: (gan.D(T(real)), gan.D(T(fake))))()
    for got, want in zip(seeded(gan.critic)(real, fake), expected, strict=True):
        torch.testing.assert_close(got, want)


def _cutout_mask(n, h, w, seed, before=()):
    """The cutout mask T draws at ``seed``, after the draws ``before`` (sizes)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for size in before:
            torch.rand(size)
        s_h, s_w = aug.cutout_size(h, w)
        c_h = torch.randint(0, h - s_h % 2 + 1, (n,))
        c_w = torch.randint(0, w - s_w % 2 + 1, (n,))
    return aug.cutout(torch.ones(n, 1, h, w), c_h, c_w)


def test_r1_is_the_gradient_through_t_with_respect_to_the_unaugmented_input():
    gan = _module(DiffAugment("cutout"), R1(weight=3.0))
    real, fake = torch.randn(6, 2, 8, 8), torch.randn(6, 2, 8, 8)
    v = gan.discriminator.v.detach()
    # grad_x <v, cutout(x)> = v * mask: the pixels T cut out get no gradient.
    grad = v * _cutout_mask(6, 8, 8, seed=3)  # (6, 2, 8, 8)
    expected = 0.5 * 3.0 * grad.flatten(1).pow(2).sum(1).mean()
    torch.testing.assert_close(seeded(gan._penalty, 3)(real, fake, None), expected)
    assert not torch.allclose(expected, 0.5 * 3.0 * v.pow(2).sum())  # not grad at T(x)


def test_gp_interpolates_go_through_t():
    gan = _module(DiffAugment("cutout"), GradientPenalty(weight=2.0))
    real, fake = torch.randn(6, 2, 8, 8), torch.randn(6, 2, 8, 8)
    v = gan.discriminator.v.detach()
    # GP draws its interpolation weights first (6 of them), then T its squares.
    norm = (v * _cutout_mask(6, 8, 8, seed=4, before=[(6, 1, 1, 1)])).flatten(1).norm(dim=1)
    torch.testing.assert_close(seeded(gan._penalty, 4)(real, fake, None),
                               2.0 * ((norm - 1) ** 2).mean())


class Recording(DiffAugment):
    """DiffAugment that records how each of its inputs was made."""

    calls: list = []

    def forward(self, x):
        kind = ("penalty" if x.is_leaf else "generator step") if x.requires_grad else "critic"
        Recording.calls.append((kind, x.shape[0]))
        return super().forward(x)


def test_t_is_applied_in_the_critic_step_the_penalty_and_the_generator_step(make_cfg):
    Recording.calls = []
    metrics = train(make_cfg(*DIGITS, "augment=diffaug",
                             "augment._target_=tests.test_augment.Recording", "penalty=r1",
                             "model.discriminator.norm=layer", "steps=2"))
    assert metrics["status"] == "completed"
    # Per iteration: real and fake of the critic step, the reals R1 differentiates at,
    # the generated batch of the generator step (whose graph reaches G through T).
    one = [("critic", 8), ("critic", 8), ("penalty", 8), ("generator step", 8)]
    assert Recording.calls == one * 2


class Identity(DiffAugment):
    def forward(self, x):
        return x


def test_augment_none_trains_exactly_as_an_identity_t(make_cfg, tmp_path):
    """The loop's augmentation hooks add nothing but T: an identity T trains bit for bit as
    augment=none (the same draws, the same passes)."""
    common = (*DIGITS, "steps=3", "penalty=r1", "model.discriminator.norm=layer")
    train(make_cfg(*common, f"out_dir={tmp_path / 'none'}"))
    train(make_cfg(*common, "augment=diffaug", "augment._target_=tests.test_augment.Identity",
                   f"out_dir={tmp_path / 'identity'}"))
    a, b = (read_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt")
            for run in ("none", "identity"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key


def test_the_documented_augmentation_trains(make_cfg, monkeypatch):
    import sys

    module = _doc_module("An augmentation", "myaugment")
    monkeypatch.setitem(sys.modules, "myaugment", module)
    x = torch.zeros(4, 1, 8, 8, requires_grad=True)
    out = seeded(module.NoisyDiffAugment("cutout"))(x)
    out.sum().backward()
    assert out.shape == x.shape and x.grad is not None
    metrics = train(make_cfg(*DIGITS, "augment=diffaug",
                             "augment._target_=myaugment.NoisyDiffAugment", "steps=2"))
    assert metrics["status"] == "completed"


# --- ADA -----------------------------------------------------------------------------------

def test_ada_p_rises_when_the_critic_is_sure_of_the_reals_and_falls_otherwise():
    ada = ADA(target=0.6, interval=2, kimg=0.1, p=0.5)  # p moves 2 x 10 / 100 per interval
    ada.observe(torch.ones(10), 10, step=1)
    assert float(ada.p) == 0.5  # mid-interval: counted, not yet acted on
    ada.observe(torch.tensor([1.0] * 7 + [-1.0] * 3), 10, step=2)
    # r_t over the interval's 20 logits: (10 + 4) / 20 = 0.7 > 0.6
    assert float(ada.rt) == pytest.approx(0.7) and float(ada.p) == pytest.approx(0.7)
    for step in (3, 4):
        ada.observe(torch.tensor([1.0] * 5 + [-1.0] * 5), 10, step)  # r_t = 0 < 0.6
    assert float(ada.p) == pytest.approx(0.5)
    for step in (5, 6):
        ada.observe(torch.tensor([1.0] * 8 + [-1.0] * 2), 10, step)  # r_t = 0.6: stays
    assert float(ada.p) == pytest.approx(0.5)
    for step in range(7, 17):
        ada.observe(-torch.ones(10), 10, step)
    assert float(ada.p) == 0.0  # kept in [0, 1]
    for step in range(17, 29):
        ada.observe(torch.ones(10), 10, step)
    assert float(ada.p) == 1.0


def test_ada_applies_each_op_with_probability_p():
    x = torch.ones(20000, 1, 8, 8)
    assert torch.equal(seeded(ADA("color,translation,cutout", p=0.0))(x), x)
    cut = seeded(ADA("cutout", p=0.3))(x)
    assert (cut == 0).flatten(1).any(1).float().mean() == pytest.approx(0.3, abs=0.01)
    ramp = torch.arange(64.0).view(1, 1, 8, 8).repeat(4, 1, 1, 1)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        shift = torch.randint(-1, 2, (4,)), torch.randint(-1, 2, (4,))
    assert torch.equal(seeded(ADA("translation", p=1.0), 2)(ramp), aug.translate(ramp, *shift))


# --- exact resume, refusals --------------------------------------------------------------------

@pytest.mark.parametrize("setting", [
    ("augment=diffaug",),
    ("augment=ada", "augment.p=0.5", "augment.interval=2", "augment.kimg=0.08"),
])
def test_resume_with_augmentation_is_bit_identical(make_cfg, tmp_path, setting):
    full = train(make_cfg(*DIGITS, *setting, "steps=6", f"out_dir={tmp_path / 'full'}"))
    train(make_cfg(*DIGITS, *setting, "steps=3", f"out_dir={tmp_path / 'short'}"))
    short = tmp_path / "short" / "checkpoints" / "last.ckpt"
    resumed = train(make_cfg(*DIGITS, *setting, "steps=6", f"ckpt_path={short}",
                             f"out_dir={tmp_path / 'resumed'}"))
    a, b = (read_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt")["state_dict"]
            for run in ("full", "resumed"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["train/d_loss"] == full["train/d_loss"]
    if "augment=ada" in setting:  # p moved, mid-interval at the checkpoint (3 of 2 x 2)
        assert int(read_checkpoint(short)["state_dict"]["augment.p_images"]) != 40
        assert full["train/augment_p"] == resumed["train/augment_p"]


def test_resume_with_another_augmentation_is_refused(make_cfg, tmp_path):
    train(make_cfg(*DIGITS, "augment=ada", "steps=1", f"out_dir={tmp_path / 'a'}"))
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as err:
        train(make_cfg(*DIGITS, "steps=2", f"ckpt_path={ckpt}", f"out_dir={tmp_path / 'b'}"))
    assert str(err.value).startswith(
        f"{ckpt} was trained with other settings (augment: {{'_target_': 'ganzoo.ada.ADA', "
        "'policy': 'color,translation,cutout', 'target': 0.6, 'interval': 4, 'kimg': 500, "
        "'p': 0.0} there, None here)")


@pytest.mark.parametrize("overrides, message", [
    (("augment=diffaug",), "augment: DiffAugment transforms images (channels, height, width), "
                           "data.shape is [2]; use augment=none"),
    (("augment=ada", "data=gauss1d"), "augment: ADA transforms images (channels, height, "
                                      "width), data.shape is [1]; use augment=none"),
    ((*DIGITS, "augment=diffaug", "augment.policy=[color,flip]"),
     "augment.policy: unknown op 'flip'; choose from color, translation, cutout"),
    ((*DIGITS, "augment=diffaug", "augment.policy='translation,zoom'"),
     "augment.policy: unknown op 'zoom'; choose from color, translation, cutout"),
    ((*DIGITS, "augment=diffaug", "augment.policy=[]"),
     "augment.policy must name one or more of color, translation, cutout (or use "
     "augment=none), got []"),
    ((*DIGITS, "augment=ada", "augment.target=1"),
     "augment.target must be a number in (0, 1), got 1"),
    ((*DIGITS, "augment=ada", "augment.interval=0"), "augment.interval must be >= 1, got 0"),
    ((*DIGITS, "augment=ada", "augment.kimg=0"), "augment.kimg must be a positive number, got 0"),
    ((*DIGITS, "augment=ada", "augment.p=1.5"), "augment.p must be a number in [0, 1], got 1.5"),
])
def test_bad_augmentation_settings_are_one_line(make_cfg, overrides, message):
    assert refusal(make_cfg(*overrides)) == message
