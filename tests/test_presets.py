"""The PacGAN 2-D presets compose with their documented values and train."""

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ganzoo.nets.maxout import Maxout
from ganzoo.nets.pack import Packed
from train import _discriminator, train

PRESETS = {"ring_pacgan": ("ring", 8), "grid_pacgan": ("grid", 25)}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_has_the_pacgan_setup(make_cfg, preset):
    cfg = make_cfg(f"experiment={preset}", fast=False)
    data, n_modes = PRESETS[preset]
    assert cfg.data.name == data and cfg.loss._target_ == "ganzoo.losses.NonSaturating"
    assert cfg.data.batch_size == 100 and cfg.data.n_train == 100_000
    assert cfg.model.latent_dim == 2 and cfg.model.pack == 1 and cfg.n_critic == 1
    for player in ("g", "d"):
        opt = cfg.optim[player]
        assert opt._target_ == "torch.optim.Adam"
        assert opt.lr == cfg.model.lr[player]
        assert list(opt.betas) == [0.8, 0.999]
    assert (cfg.steps, cfg.lr_decay, cfg.eval_every) == (STEPS, LR_DECAY, 0)
    assert cfg.model.lr.g == LR and cfg.model.lr.d == LR

    dm = instantiate(cfg.data)
    assert dm.n_modes == n_modes and dm.train_set.shape == (100_000, 2)
    G = instantiate(cfg.model.generator)
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == 4
    D = _discriminator(cfg, dm)
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (2, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in D.modules())


def test_preset_with_pack_builds_the_packed_critic(make_cfg):
    cfg = make_cfg("experiment=grid_pacgan", "model.pack=4", fast=False)
    D = _discriminator(cfg, instantiate(cfg.data))
    assert isinstance(D, Packed) and D.pack == 4
    first = next(m for m in D.modules() if isinstance(m, Maxout))
    assert first.linear.in_features == 8  # 4 points of 2 coordinates
    assert D(torch.zeros(100, 2)).shape == (25,)


def test_preset_keeps_the_chosen_loss_own_critic_steps(make_cfg):
    cfg = make_cfg("experiment=ring_pacgan", "loss=wgan_gp", fast=False)
    assert cfg.loss._target_ == "ganzoo.losses.WGANGP" and cfg.n_critic == 5


def test_training_batches_come_from_the_fixed_training_set(make_cfg):
    cfg = make_cfg("experiment=grid_pacgan", "data.n_train=1000", fast=False)
    dm = instantiate(cfg.data)
    again = instantiate(cfg.data)
    assert torch.equal(dm.train_set, again.train_set)  # drawn once, from the seed
    stream = iter(dm.train_dataloader())
    batches = [next(stream) for _ in range(3)]
    rows = {tuple(r) for r in dm.train_set.tolist()}
    assert all(b.shape == (100, 2) and all(tuple(r) in rows for r in b.tolist())
               for b in batches)
    again.seek(2)  # a pure function of (seed, position): resumable
    assert torch.equal(next(iter(again.train_dataloader())), batches[2])


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains(make_cfg, preset):
    metrics = train(make_cfg(f"experiment={preset}", "steps=3", "model.pack=2"))
    assert metrics["status"] == "completed" and metrics["steps"] == 3
    assert 0 <= metrics["eval/modes"] <= PRESETS[preset][1]


# The documented budget (conf/experiment/*_pacgan.yaml, README "Mode coverage").
STEPS, LR_DECAY, LR = 20000, "linear", 1.0e-4
