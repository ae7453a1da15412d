"""Packing (PacGAN) and the maxout critic: exact reshaping, no real/fake mixing, penalties
on packs, every loss with a packed critic, and the refusals before training."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganzoo.config import ConfigError, validate
from ganzoo.gan import GAN
from ganzoo.losses import NonSaturating, Wasserstein
from ganzoo.nets.maxout import Maxout
from ganzoo.nets.mlp import MLPDiscriminator
from ganzoo.nets.pack import Packed, packed_shape
from ganzoo.penalties import R1, GradientPenalty
from train import train

from .conftest import group_options, refusal, training_figures


class Recorder(nn.Module):
    """A critic that remembers its inputs and returns their first value as the logit."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.weight * x.flatten(1)[:, 0]


# --- maxout ---------------------------------------------------------------------------------


def test_maxout_by_hand():
    layer = Maxout(2, 2, pieces=3)
    with torch.no_grad():  # unit 0: rows 0-2, unit 1: rows 3-5
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0],
                                                [2.0, 0.0], [0.0, -2.0], [1.0, 1.0]]))
        layer.linear.bias.copy_(torch.tensor([0.0, 0.5, 0.0, -1.0, 0.0, 3.0]))
    x = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    # sample 0: unit 0 = max(1, 2.5, -3) = 2.5; unit 1 = max(1, -4, 6) = 6
    # sample 1: unit 0 = max(-3, 1, 2.5) = 2.5; unit 1 = max(-7, -1, 0.5) = 0.5
    assert_close(layer(x), torch.tensor([[2.5, 6.0], [2.5, 0.5]]))


def test_maxout_critic_has_the_pacgan_layout():
    D = MLPDiscriminator([4], hidden_dim=200, n_layers=3, activation="maxout", pieces=5)
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (4, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert [m.linear.out_features for m in maxouts] == [1000, 1000, 1000]
    assert not any(isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.BatchNorm1d)) for m in D.modules())
    assert D(torch.randn(7, 4)).shape == (7,)


# --- the packed critic ----------------------------------------------------------------------


def test_pack_concatenates_consecutive_vectors_in_order():
    rec = Recorder()
    D = Packed(rec, 3, [2])
    x = torch.arange(12.0).reshape(6, 2)
    out = D(x)
    assert_close(rec.seen[0], torch.tensor([[0.0, 1, 2, 3, 4, 5], [6.0, 7, 8, 9, 10, 11]]))
    assert_close(out, torch.tensor([0.0, 6.0]))  # one logit per pack
    assert packed_shape([2], 3) == [6]


def test_pack_concatenates_images_along_channels():
    rec = Recorder()
    D = Packed(rec, 2, [3, 4, 4])
    x = torch.randn(4, 3, 4, 4)
    D(x)
    expected = torch.stack([torch.cat([x[0], x[1]]), torch.cat([x[2], x[3]])])  # (2, 6, 4, 4)
    assert torch.equal(rec.seen[0], expected)
    assert packed_shape([3, 4, 4], 2) == [6, 4, 4]


def test_pack_refuses_a_batch_it_cannot_split():
    with pytest.raises(ValueError, match=r"^model.pack=4: a batch of 6 samples does not split "
                                         r"into packs of 4$"):
        Packed(Recorder(), 4, [2])(torch.zeros(6, 2))


def test_pointwise_is_the_critic_on_copies_of_each_point():
    torch.manual_seed(0)
    critic = MLPDiscriminator([6], hidden_dim=8, n_layers=2)
    D = Packed(critic, 3, [2])
    x = torch.randn(5, 2)
    expected = torch.stack([critic(torch.cat([p, p, p])[None])[0] for p in x])
    assert_close(D.pointwise(x), expected)


def _gan(D, **kwargs):
    return GAN(nn.Linear(2, 2), D, kwargs.pop("loss", NonSaturating()), torch.optim.Adam,
               torch.optim.Adam, latent_dim=2, **kwargs)


def test_fused_critic_pass_never_packs_real_with_fake():
    rec = Recorder()
    module = _gan(Packed(rec, 4, [2]))
    assert module.fuse_critic_pass
    real = torch.rand(8, 2) + 1.0  # all real values in [1, 2), all fakes in [-2, -1)
    fake = -torch.rand(8, 2) - 1.0
    real_logits, fake_logits = module.critic(real, fake)
    (seen,) = rec.seen  # one pass over [real; fake]
    assert seen.shape == (4, 8)
    assert (seen[:2] > 0).all() and (seen[2:] < 0).all()
    assert torch.equal(seen[:2].reshape(8, 2), real) and torch.equal(seen[2:].reshape(8, 2), fake)
    assert_close(real_logits, real[::4, 0])
    assert_close(fake_logits, fake[::4, 0])


def _linear_packed_gan(w, **kwargs):
    critic = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([w], dtype=torch.float64))
    return _gan(Packed(critic, 2, [2]), **kwargs)


def test_gradient_penalty_is_taken_per_pack():
    # A linear packed critic has gradient w on every pack: the penalty is
    # lambda (||w|| - 1)^2 = 10 * (5 - 1)^2, not the mean of per-sample norms of w's halves.
    module = _linear_packed_gan([1.0, 2.0, 2.0, 4.0], loss=Wasserstein(clip=0.0),
                                penalty=GradientPenalty(weight=10.0))
    real = torch.randn(6, 2, dtype=torch.float64)
    fake = torch.randn(6, 2, dtype=torch.float64)
    critic, (real_p, fake_p) = module.penalty_view(None, real, fake)
    assert torch.equal(real_p, real.reshape(3, 4)) and torch.equal(fake_p, fake.reshape(3, 4))
    penalty = module.penalty(critic, real_p, fake_p)
    assert_close(penalty, torch.tensor(160.0, dtype=torch.float64))
    # the loop's own penalty term (critic step 0: on) is the same, taken on the same packs
    assert_close(module._penalty(real, fake, None), torch.tensor(160.0, dtype=torch.float64))


def test_gradient_penalty_interpolates_whole_packs():
    rec = Recorder().double()
    module = _gan(Packed(rec, 2, [2]), loss=Wasserstein(clip=0.0),
                  penalty=GradientPenalty(weight=10.0))
    real = torch.randn(6, 2, dtype=torch.float64)
    fake = real + 1.0 + torch.rand(6, 2, dtype=torch.float64)  # differs in every coordinate
    critic, (real_p, fake_p) = module.penalty_view(None, real, fake)
    module.penalty(critic, real_p, fake_p)
    (x_hat,) = rec.seen
    eps = (x_hat - fake_p) / (real_p - fake_p)  # (3 packs, 4 values): one weight per pack
    assert_close(eps, eps[:, :1].expand(3, 4))
    assert len(set(eps[:, 0].tolist())) == 3


def test_r1_is_taken_per_pack():
    # gamma / 2 * ||w||^2 per pack (25), not per sample (the mean of 5 and 20).
    module = _linear_packed_gan([1.0, 2.0, 2.0, 4.0], penalty=R1(weight=2.0))
    real = torch.randn(4, 2, dtype=torch.float64)
    fake = torch.randn(4, 2, dtype=torch.float64)
    assert_close(module._penalty(real, fake, None), torch.tensor(25.0, dtype=torch.float64))


# --- in training ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_loss_trains_with_a_packed_critic(make_cfg, tmp_path, loss):
    metrics = train(make_cfg(f"loss={loss}", "model.pack=2", "data.batch_size=8", "steps=3",
                             "model.generator.hidden_dim=16",
                             "model.discriminator.hidden_dim=16"))
    assert metrics["status"] == "completed" and metrics["steps"] == 3
    keys = (*training_figures(make_cfg(f"loss={loss}")), "eval/modes")
    assert ("train/divergence" in metrics) == ("train/divergence" in keys)
    for key in keys:
        assert np.isfinite(metrics[key]), key
    # the single-sample reference does not measure what a packed critic reports
    assert "eval/divergence_ref" not in metrics
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# One penalty at a time: the gradient penalty (loss=wgan_gp), and R1 with R2 (penalty=r1r2).
@pytest.mark.parametrize("penalty", [(), ("penalty=r1r2",)], ids=["gp", "r1r2"])
def test_packed_critic_with_a_penalty_trains(make_cfg, penalty):
    metrics = train(make_cfg("loss=wgan_gp", *penalty, "model.pack=4",
                             "data.batch_size=8", "steps=2"))
    assert metrics["status"] == "completed" and metrics["train/penalty"] > 0


def test_packed_critic_is_built_for_packs(make_cfg):
    import hydra

    cfg = make_cfg("model.pack=3", "data.batch_size=9")
    module = hydra.utils.instantiate(cfg.model)  # the GAN module packs its critic itself
    D = module.discriminator
    assert isinstance(D, Packed) and D.pack == 3 and D.data_shape == (2,)
    assert D.critic.net[0].in_features == 6
    assert D(torch.zeros(9, 2)).shape == (3,)
    plain = hydra.utils.instantiate(make_cfg().model).discriminator  # pack 1: unwrapped
    assert type(plain) is MLPDiscriminator


def test_packed_image_critic_trains(make_cfg, tmp_path):
    metrics = train(make_cfg("data=digits", "model.conditional=false", "model.pack=2",
                             "data.batch_size=4", "data.n_train=8", "steps=2",
                             "model.generator.width=4", "model.discriminator.width=4"))
    assert metrics["status"] == "completed" and metrics["steps"] == 2


def test_pack_that_does_not_divide_the_batch_is_refused(make_cfg, tmp_path):
    cfg = make_cfg("model.pack=3", "data.batch_size=100")
    msg = ("model.pack=3 must divide the batch size, data.batch_size=100: the critic judges "
           "packs of 3 samples")
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value) == msg
    with pytest.raises(ConfigError):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()  # refused before training


def test_bad_pack_values_are_refused(make_cfg):
    assert refusal(make_cfg("model.pack=0")) == "model.pack must be >= 1, got 0"
    assert refusal(make_cfg("model.pack=1.5")) == "model.pack must be an integer, got 1.5"
    with pytest.raises(ConfigError) as err:
        validate(make_cfg("data=digits", "model.conditional=true", "model.pack=2"))
    assert str(err.value) == ("model.pack=2: packing is not available for a class-conditional "
                              "model (model.conditional=true)")
