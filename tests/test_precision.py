"""bf16 mixed precision: gradient penalties under autocast agree with fp32.

The WGAN-GP penalty and R1 differentiate the critic with respect to its input; under
``trainer.precision=bf16-mixed`` the critic runs in bf16 while the penalty arithmetic
(gradient norms, squares, means) stays in fp32. CPU autocast supports bf16, so this
runs everywhere. Tolerance: bf16 keeps 8 bits of mantissa (relative error ~4e-3 per
operation); through a few layers and a double backward we allow 3% relative error.
"""

import pytest
import torch
from torch.testing import assert_close

from ganzoo.losses import WGANGP, r1_penalty
from ganzoo.nets.dcgan import DCGANDiscriminator
from train import train

RTOL, ATOL = 3e-2, 1e-3


def _critic():
    torch.manual_seed(0)
    return DCGANDiscriminator([3, 16, 16], width=16, norm="layer")


def _data():
    gen = torch.Generator().manual_seed(1)
    real = torch.rand(8, 3, 16, 16, generator=gen) * 2 - 1
    fake = torch.rand(8, 3, 16, 16, generator=gen) * 2 - 1
    return real, fake


def _penalty_and_grads(kind: str, bf16: bool):
    D = _critic()
    real, fake = _data()
    torch.manual_seed(2)  # the same interpolation points in both precisions
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if kind == "wgan_gp":
            value = WGANGP(gp_weight=10.0).penalty(D, real, fake)
        else:
            value = r1_penalty(D, real, gamma=10.0)
    # (the read-out's bias does not affect the input gradient: no gradient there)
    params = [p for name, p in D.named_parameters() if name != "head.linear.bias"]
    grads = torch.autograd.grad(value, params)
    return value, torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("kind", ["wgan_gp", "r1"])
def test_penalty_under_bf16_autocast_matches_fp32(kind):
    value32, grad32 = _penalty_and_grads(kind, bf16=False)
    value16, grad16 = _penalty_and_grads(kind, bf16=True)
    assert value16.dtype == torch.float32  # the penalty arithmetic is not done in bf16
    assert value32.item() > 0.1  # a penalty that is actually there to compare
    assert_close(value16, value32, rtol=RTOL, atol=ATOL)
    # The penalty's gradient for the critic's weights (double backward through bf16).
    cos = torch.nn.functional.cosine_similarity(grad16, grad32, dim=0)
    assert cos.item() > 0.995
    assert_close(grad16.norm(), grad32.norm(), rtol=RTOL, atol=ATOL)


def _first_step(make_cfg, tmp_path, precision: str) -> dict:
    cfg = make_cfg("data=digits", "model=dcgan", "loss=wgan_gp", "r1_gamma=1.0",
                   "model.discriminator.norm=layer", "model.generator.width=8",
                   "model.discriminator.width=8", "steps=1", "log_every=1", "n_critic=1",
                   f"trainer.precision={precision}", f"out_dir={tmp_path / precision}")
    return train(cfg)


@pytest.mark.slow
def test_bf16_mixed_training_step_matches_fp32(make_cfg, tmp_path):
    """The first step's figures are computed before any update, on the same batch and
    weights: bf16-mixed must agree with 32-true within the tolerance."""
    m32 = _first_step(make_cfg, tmp_path, "32-true")
    m16 = _first_step(make_cfg, tmp_path, "bf16-mixed")
    assert m16["status"] == "completed" and m16["steps"] == 1
    for key in ("train/d_loss", "train/g_loss", "train/penalty", "train/d_real",
                "train/d_fake"):
        assert_close(torch.tensor(m16[key]), torch.tensor(m32[key]), rtol=RTOL, atol=2e-2,
                     msg=key)
    assert m32["train/penalty"] > 0.01
