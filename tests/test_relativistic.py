"""Relativistic losses against hand-computed values: real != fake, the arguments'
order, the pairing, and the gradients each player gets."""

import math

import pytest
import torch

from ganzoo.losses import RelativisticAverage, RelativisticPairing
from train import train


def sp(t: float) -> float:
    return math.log1p(math.exp(t))  # softplus


R, F = [2.0, -1.0], [0.5, 1.5]  # critic outputs on two real and two fake samples


def test_pairing_matches_the_formula_by_hand():
    loss = RelativisticPairing()
    r, f = torch.tensor(R), torch.tensor(F)
    d = (sp(0.5 - 2.0) + sp(1.5 + 1.0)) / 2  # E softplus(C_f - C_r), index by index
    g = (sp(2.0 - 0.5) + sp(-1.0 - 1.5)) / 2  # E softplus(C_r - C_f)
    assert loss.d_loss(r, f).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(r, f).item() == pytest.approx(g, rel=1e-6)
    # Swapping the batches swaps the players' objectives: the order matters.
    assert loss.d_loss(f, r).item() == pytest.approx(g, rel=1e-6)
    # Pairs are index by index, not all against all.
    assert loss.d_loss(r, f.flip(0)).item() != pytest.approx(d, rel=1e-3)


def test_average_matches_the_formula_by_hand():
    loss = RelativisticAverage()
    r, f = torch.tensor(R), torch.tensor(F)
    mr, mf = sum(R) / 2, sum(F) / 2  # 0.5 and 1.0
    d = (sum(sp(-(x - mf)) for x in R) + sum(sp(y - mr) for y in F)) / 2
    g = (sum(sp(-(y - mr)) for y in F) + sum(sp(x - mf) for x in R)) / 2
    assert loss.d_loss(r, f).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(r, f).item() == pytest.approx(g, rel=1e-6)
    assert loss.d_loss(f, r).item() == pytest.approx(g, rel=1e-6)


def test_gradients_push_each_player_its_way():
    for loss in (RelativisticPairing(), RelativisticAverage()):
        r = torch.tensor(R, requires_grad=True)
        f = torch.tensor(F, requires_grad=True)
        loss.d_loss(r, f).backward()
        assert (r.grad < 0).all() and (f.grad > 0).all()  # raise C_r, lower C_f
        f2 = torch.tensor(F, requires_grad=True)
        loss.g_loss(torch.tensor(R), f2).backward()
        assert (f2.grad < 0).all()  # the generator raises C on its samples
        # d/dC_f of softplus(C_r - C_f) is -sigmoid(C_r - C_f): exact for the pairing.
    f3 = torch.tensor(F, requires_grad=True)
    RelativisticPairing().g_loss(torch.tensor(R), f3).backward()
    expect = [-torch.sigmoid(torch.tensor(a - b)).item() / 2 for a, b in zip(R, F, strict=True)]
    assert f3.grad.tolist() == pytest.approx(expect, rel=1e-6)


def test_stable_for_large_logits_and_needs_real_logits():
    big = torch.tensor([1e4, -1e4])
    for loss in (RelativisticPairing(), RelativisticAverage()):
        assert loss.needs_real_logits
        assert torch.isfinite(loss.d_loss(big, -big)) and torch.isfinite(loss.g_loss(big, -big))
        with pytest.raises(ValueError, match="needs the real logits"):
            loss.g_loss(None, big)
    with pytest.raises(ValueError, match="as many real as fake logits, got 2 and 3"):
        RelativisticPairing().d_loss(big, torch.zeros(3))
    assert RelativisticPairing().divergence(big, big) is None


@pytest.mark.parametrize("name", ["rsgan", "rpgan", "ragan"])
def test_relativistic_losses_train_on_the_ring(make_cfg, name):
    metrics = train(make_cfg(f"loss={name}", "steps=6", "log_every=2", "eval_every=3"))
    assert metrics["status"] == "completed" and metrics["steps"] == 6
    assert "train/divergence" not in metrics  # none defined: none logged


def test_the_r3gan_experiment_is_rpgan_with_r1_and_r2(make_cfg):
    import hydra

    from ganzoo.penalties import R1R2

    cfg = make_cfg("experiment=r3gan")
    assert cfg.loss._target_ == "ganzoo.losses.RelativisticPairing"
    penalty = hydra.utils.instantiate(cfg.penalty)
    assert type(penalty) is R1R2 and penalty.weight == 0.1


def test_generator_update_reads_the_real_logits_as_constants():
    """The relativistic generator step: the critic's logits on the real batch carry no
    graph (the backward pass runs through the critic for the fakes only), and the
    generator's gradient is the one of the single pass over [real; fake]."""
    from torch import nn

    from ganzoo.gan import GAN

    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(2, 8), nn.LayerNorm(8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    module = GAN(nn.Linear(2, 2), D, RelativisticPairing(), torch.optim.Adam, torch.optim.Adam,
                 latent_dim=2)
    assert module.fuse_critic_pass
    real, z = torch.randn(6, 2), torch.randn(6, 2)

    fake = module.generator(z)
    real_logits, fake_logits = module.critic(real, fake, real_graph=False)
    assert not real_logits.requires_grad and fake_logits.requires_grad
    module.loss.g_loss(real_logits, fake_logits).backward()
    got = [p.grad.clone() for p in module.generator.parameters()]

    module.generator.zero_grad()
    module.discriminator.zero_grad()
    r, f = module.critic(real, module.generator(z))  # one pass over [real; fake]
    module.loss.g_loss(r.detach(), f).backward()
    for g, p in zip(got, module.generator.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)
    torch.testing.assert_close(real_logits, r.detach())
