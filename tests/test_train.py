"""End-to-end runs of train(cfg) and the exact shape of the alternating loop."""

import json
import math

import pytest
import torch

from ganzoo.gan import GAN
from train import train

from .conftest import group_options


@pytest.mark.parametrize("loss", group_options("loss"))
def test_short_run_per_loss(make_cfg, tmp_path, loss):
    import hydra

    from ganzoo.losses import GANLoss

    cfg = make_cfg(f"loss={loss}", "steps=4")
    metrics = train(cfg)
    assert metrics["status"] == "completed"
    assert metrics["steps"] == 4
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake",
                "eval/modes", "eval/hq", "eval/reverse_kl"):
        assert key in metrics, key
    # A divergence is logged exactly for the losses that define one (not the relativistic).
    defines = type(hydra.utils.instantiate(cfg.loss)).divergence is not GANLoss.divergence
    assert ("train/divergence" in metrics) == defines
    assert defines == (loss not in ("rsgan", "rpgan", "ragan"))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["steps"] == 4 and saved["status"] == "completed"
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl", "pearson", "neyman",
                                        "squared_hellinger", "js", "gan", "total_variation"])
def test_every_f_divergence_trains(make_cfg, divergence):
    metrics = train(make_cfg("loss=fgan", f"loss.divergence={divergence}", "steps=3"))
    assert metrics["steps"] == 3


@pytest.mark.parametrize("data", ["ring", "grid", "gauss1d"])
def test_every_toy_dataset_trains(make_cfg, tmp_path, data):
    metrics = train(make_cfg(f"data={data}", "steps=3"))
    assert metrics["steps"] == 3
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class RecordingGAN(GAN):
    """Records, per backward, which parameters could receive a gradient."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.backwards = []
        self.g_step_after_batch = []
        self.real_batches = []

    def manual_backward(self, loss, *args, **kwargs):
        g = all(p.requires_grad for p in self.generator.parameters())
        g_none = not any(p.requires_grad for p in self.generator.parameters())
        d = all(p.requires_grad for p in self.discriminator.parameters())
        d_none = not any(p.requires_grad for p in self.discriminator.parameters())
        assert (g or g_none) and (d or d_none), "networks must be toggled as a whole"
        self.backwards.append(("G" if g else "") + ("D" if d else ""))
        super().manual_backward(loss, *args, **kwargs)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.g_step_after_batch.append(self.g_step)
        self.real_batches.append(batch.clone())


def test_k_to_1_schedule_and_toggling(make_cfg, monkeypatch):
    import ganzoo.gan

    monkeypatch.setattr(ganzoo.gan, "GAN", RecordingGAN)
    created = []
    original_init = RecordingGAN.__init__

    def capture(self, *a, **k):
        original_init(self, *a, **k)
        created.append(self)

    monkeypatch.setattr(RecordingGAN, "__init__", capture)
    metrics = train(make_cfg("n_critic=3", "steps=4"))
    (module,) = created
    assert metrics["steps"] == 4
    # 3 critic updates, then the generator: batches 3, 6, 9 and 12 update G.
    assert module.g_step_after_batch == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert module.backwards == (["D", "D", "D", "G"] * 4)
    assert module.d_step == 12
    # Each critic update sees a fresh real batch.
    batches = module.real_batches
    assert all(not torch.equal(a, b) for a, b in zip(batches, batches[1:], strict=False))


def test_global_step_does_not_leak_into_outputs(make_cfg, tmp_path):
    train(make_cfg("loss=wgan_gp", "steps=4", "log_every=2", "ckpt_every=2"))
    rows = (tmp_path / "logs" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    steps = [int(r.split(",")[header.index("step")]) for r in rows[1:]
             if r.split(",")[header.index("train/d_loss")]]
    assert steps == [2, 4]  # generator steps, not Lightning's 6 optimiser steps per update
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step_000002.ckpt"]  # step 4 is the end: last.ckpt


def test_default_run_outputs(make_cfg, tmp_path, capsys):
    metrics = train(make_cfg("steps=20"))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["steps"] == 20
    for key in ("wall_time_s", "eval/modes", "eval/hq", "eval/reverse_kl"):
        # None in metrics.json stands for inf or nan: not in a finished run with samples
        # near a mode (reverse KL is inf only when no sample is).
        assert isinstance(saved[key], float) and math.isfinite(saved[key]), key
        assert saved[key] == metrics[key], key
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganzoo"]["g_step"] == 20
    assert "generator.net.0.weight" in ckpt["state_dict"]
    out = capsys.readouterr().out
    for line in ("generator steps", "wall time", "modes covered", "high quality", "reverse KL"):
        assert line in out


@pytest.mark.slow
def test_default_run_covers_the_ring(make_cfg, tmp_path):
    """The embedded default (`uv run train.py`) finds all 8 modes with >= 90% quality."""
    cfg = make_cfg("trainer.enable_progress_bar=false", fast=False)
    assert (cfg.data.name, cfg.model.name, cfg.loss._target_) == (
        "ring", "mlp", "ganzoo.losses.NonSaturating")
    metrics = train(cfg)
    assert metrics["steps"] == cfg.steps
    assert metrics["eval/modes"] == 8.0
    assert metrics["eval/hq"] >= 90.0
    assert metrics["eval/reverse_kl"] <= 0.05
