"""Blocks of steps (ganzoo/updates.py, ganzoo/data/streams.py): one call of training_step
trains on several consecutive batches, and nothing a run computes, logs or saves changes."""

import json
import os
import signal
import subprocess
import sys

import lightning as L
import pytest
import torch

import ganzoo.gan
from ganzoo.checkpoint import read_checkpoint
from ganzoo.config import ConfigError
from ganzoo.data.streams import Block, Blocked
from ganzoo.data.toy import RandomBatches
from ganzoo.losses import NonSaturating
from train import TrainingInterrupted, train

from .conftest import ROOT


class EveryBatch(L.Callback):
    """A callback of a user's that acts on every batch (it knows nothing of blocks)."""

    def __init__(self):
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1


def _fit(make_cfg, out, *overrides):
    """Train; return the module (its trainer still attached) and what the run wrote."""
    seen = {}
    original = ganzoo.gan.GAN.on_fit_start

    def record(self):
        original(self)
        seen["module"] = self

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ganzoo.gan.GAN, "on_fit_start", record)
        train(make_cfg(f"out_dir={out}", *overrides))
    return seen["module"]


def _batches(module) -> int:
    """How many times Lightning's loop fetched a batch (a Block counts once)."""
    return module.trainer.fit_loop.epoch_loop.batch_progress.total.completed


def _same_run(a, b):
    """Two run directories with the same weights, optimiser states, figures and files."""
    wa = read_checkpoint(a / "checkpoints" / "last.ckpt")
    wb = read_checkpoint(b / "checkpoints" / "last.ckpt")
    assert wa["state_dict"].keys() == wb["state_dict"].keys()
    for key in wa["state_dict"]:
        assert torch.equal(wa["state_dict"][key], wb["state_dict"][key]), key
    for oa, ob in zip(wa["optimizer_states"], wb["optimizer_states"], strict=True):
        for sa, sb in zip(oa["state"].values(), ob["state"].values(), strict=True):
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert wa["ganzoo"]["g_step"] == wb["ganzoo"]["g_step"]
    assert wa["ganzoo"]["d_step"] == wb["ganzoo"]["d_step"]
    assert (a / "logs" / "metrics.csv").read_text() == (b / "logs" / "metrics.csv").read_text()
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    ma.pop("wall_time_s"), mb.pop("wall_time_s")
    assert ma == mb
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == \
        sorted(p.name for p in (b / "checkpoints").iterdir())
    pictures = [sorted(p.name for p in (d / "samples").glob("*.png")) for d in (a, b)]
    assert pictures[0] == pictures[1]


@pytest.mark.parametrize("setting, batches", [
    # gcd(log 10, eval 40, ckpt 40, steps 80) = 10 steps a block: 1 + 9 + 7 x 10 steps
    (["loss=nonsaturating"], 9),
    # k = 5: blocks of 10 generator iterations, 50 critic batches (the first: one of 5)
    pytest.param(["loss=wgan_gp"], 9, marks=pytest.mark.slow),
    # images: Blocks of (uint8 images, labels), made [-1, 1] batch by batch
    (["data=digits", "model.conditional=false", "data.batch_size=16", "data.n_train=256",
      "eval=none"], 9),
])
def test_blocks_train_exactly_as_one_batch_per_call(make_cfg, tmp_path, setting, batches):
    common = [*setting, "steps=80", "log_every=10", "eval_every=40", "ckpt_every=40"]
    blocked = _fit(make_cfg, tmp_path / "blocked", *common)
    single = _fit(make_cfg, tmp_path / "single", *common, "block_steps=1")
    assert _batches(blocked) == batches
    assert _batches(single) == 80 * blocked.n_critic
    _same_run(tmp_path / "blocked", tmp_path / "single")


def test_a_callback_acting_per_batch_turns_blocks_off(make_cfg, tmp_path):
    module = _fit(make_cfg, tmp_path / "run", "steps=20", "log_every=10",
                  f"+callbacks.user._target_={__name__}.EveryBatch")
    user = next(c for c in module.trainer.callbacks if isinstance(c, EveryBatch))
    assert user.batches == _batches(module) == 20  # it saw every batch
    with pytest.raises(ConfigError, match=r"^block_steps=5: EveryBatch acts on every batch"):
        _fit(make_cfg, tmp_path / "refused", "steps=20", "log_every=10", "block_steps=5",
             f"+callbacks.user._target_={__name__}.EveryBatch")


def test_auto_takes_the_most_steps_every_interval_allows(make_cfg, tmp_path):
    assert _fit(make_cfg, tmp_path / "a", "steps=400", "log_every=100",
                "ckpt_every=200").trainer.datamodule.train_block == (50, 1)
    assert _fit(make_cfg, tmp_path / "b", "steps=42", "log_every=7", "ckpt_every=14",
                "loss=wgan_gp").trainer.datamodule.train_block == (7, 5)
    assert _fit(make_cfg, tmp_path / "c", "steps=13", "log_every=2",
                "ckpt_every=2").trainer.datamodule.train_block == (1, 1)  # 13 is prime


def test_block_steps_that_would_skip_an_interval_is_refused(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"^block_steps=4 must divide ckpt_every=10: a "
                                          r"block ends on every step a figure, evaluation "
                                          r"or checkpoint is due$"):
        train(make_cfg(f"out_dir={tmp_path / 'run'}", "steps=20", "log_every=4",
                       "block_steps=4", "ckpt_every=10"))
    with pytest.raises(ConfigError, match=r"^block_steps=4 must divide steps=22"):
        train(make_cfg(f"out_dir={tmp_path / 'run'}", "steps=22", "log_every=4",
                       "block_steps=4"))
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


class EveryTenSteps(L.Callback):
    """A block-aware callback of a user's: it acts on multiples of its `every`."""

    block_aware, every_key = True, "callbacks.ten.every"

    def __init__(self, every):
        self.every, self.seen = every, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append(pl_module.g_step)


def test_a_block_aware_callback_sees_the_multiples_of_its_interval(make_cfg, tmp_path):
    module = _fit(make_cfg, tmp_path / "run", "steps=60", "log_every=20", "ckpt_every=60",
                  f"+callbacks.ten._target_={__name__}.EveryTenSteps",
                  "+callbacks.ten.every=15")
    assert module.trainer.datamodule.train_block == (5, 1)  # gcd(20, 60, 15)
    seen = next(c for c in module.trainer.callbacks if isinstance(c, EveryTenSteps)).seen
    assert set(range(15, 61, 15)) <= set(seen)
    with pytest.raises(ConfigError, match=r"^block_steps=20 must divide "
                                          r"callbacks.ten.every=15: "):
        _fit(make_cfg, tmp_path / "refused", "steps=60", "log_every=20", "ckpt_every=60",
             "block_steps=20", f"+callbacks.ten._target_={__name__}.EveryTenSteps",
             "+callbacks.ten.every=15")


@pytest.mark.parametrize("value, message", [
    ("0", "block_steps must be auto or an integer >= 1, got 0"),
    ("many", "block_steps must be auto or an integer >= 1, got 'many'"),
    ("7", "block_steps=7 must divide log_every=50: a block ends on every step a figure, "
          "evaluation or checkpoint is due"),
])
def test_bad_block_steps_is_one_line_and_exit_2(tmp_path, value, message):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"block_steps={value}",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]


class SignalAtGeneratorStep(NonSaturating):
    """The generator's objective sends SIGTERM to this process at its 23rd call: in the
    middle of a block (blocks of 10 steps end on steps 1, 10, 20, 30, ...)."""

    calls = 0

    def g_loss(self, real_logits, fake_logits):
        type(self).calls += 1
        if type(self).calls == 23:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().g_loss(real_logits, fake_logits)


def test_a_signal_inside_a_block_stops_after_the_update_in_flight(make_cfg, tmp_path):
    common = ["steps=40", "log_every=10", "ckpt_every=20"]
    train(make_cfg(*common, f"out_dir={tmp_path / 'full'}"))
    SignalAtGeneratorStep.calls = 0
    with pytest.raises(TrainingInterrupted):
        train(make_cfg(*common, f"out_dir={tmp_path / 'first'}",
                       f"loss._target_={__name__}.SignalAtGeneratorStep"))
    saved = read_checkpoint(tmp_path / "first" / "checkpoints" / "last.ckpt")
    assert saved["ganzoo"]["g_step"] == 23  # not the block's end (30)
    # Resumed from step 23, the blocks end on the same steps again (24 ... 30, 40).
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = _fit(make_cfg, tmp_path / "resumed", *common,  # (no more signals: call > 23)
                   f"loss._target_={__name__}.SignalAtGeneratorStep", f"ckpt_path={last}")
    assert resumed.g_step == 40
    assert _batches(resumed) - saved["loops"]["fit_loop"]["epoch_loop.batch_progress"][
        "total"]["completed"] == 3  # step 24; 25-30; 31-40
    full = read_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")["state_dict"]
    again = read_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(torch.equal(full[k], again[k]) for k in full)


def _lengths(blocked, n):
    it = iter(blocked)
    return [len(next(it)) for _ in range(n)]


def test_blocks_end_on_multiples_of_their_size_wherever_the_stream_starts():
    stream = RandomBatches(torch.arange(1000.0).reshape(-1, 2), batch_size=4, seed=0)
    assert _lengths(Blocked(stream, 20, 1), 4) == [1, 19, 20, 20]
    stream.seek(37)  # a resumed run: 37 batches trained on
    assert _lengths(Blocked(stream, 20, 1), 4) == [1, 2, 20, 20]
    stream.seek(35)  # k = 5 critic batches a generator step, blocks of 4 iterations
    assert _lengths(Blocked(stream, 20, 5), 3) == [5, 20, 20]
    # The batches are the stream's own, in order.
    stream.seek(3)
    blocks = iter(Blocked(stream, 4, 1))
    got = [b for _ in range(3) for b in next(blocks)]
    stream.seek(3)
    plain = iter(stream)
    assert all(isinstance(b, torch.Tensor) for b in got)
    assert all(torch.equal(b, next(plain)) for b in got)


def test_blocks_of_large_batches_hold_fewer_of_them():
    data = torch.zeros(64, 1024)  # batches of 32 x 1024 floats: 128 KiB each
    stream = RandomBatches(data, batch_size=32, seed=0)
    # 50 of them would be 6.25 MiB; with 1 MiB allowed, 5 (the largest divisor of 50
    # within it), so blocks still end on every multiple of 50.
    blocks = Blocked(stream, 50, 1, max_bytes=2**20)
    assert _lengths(blocks, 4) == [1, 4, 5, 5]
    assert isinstance(next(iter(blocks)), Block)
