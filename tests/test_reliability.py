"""Exact resume, interrupts, the divergence guard and safe checkpoint reading."""

import json
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch

from ganzoo.checkpoint import CheckpointError, read_checkpoint
from ganzoo.gan import NonFiniteLossError
from ganzoo.losses import FGAN, NonSaturating
from train import TrainingInterrupted, train

from .conftest import ROOT


class SignalAt(L.Callback):
    """Sends a real signal to this process after training batch ``batch``."""

    def __init__(self, batch: int, signum: int = signal.SIGTERM) -> None:
        self.batch, self.signum, self.seen = batch, signum, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen == self.batch:
            os.kill(os.getpid(), self.signum)


def _weights(path):
    return read_checkpoint(path)["state_dict"]


def _assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("loss, k, stop_batch", [
    # stopped inside the 3:1 schedule (2 G steps + 1 D step)
    pytest.param("wgan_gp", 3, 7, marks=pytest.mark.slow),
    ("nonsaturating", 1, 5),   # stopped right after a generator update
])
def test_interrupted_then_resumed_run_is_bit_identical(make_cfg, tmp_path, loss, k, stop_batch):
    common = [f"loss={loss}", f"n_critic={k}", "steps=6", "log_every=1", "ckpt_every=2"]
    full = train(make_cfg(*common, f"out_dir={tmp_path / 'full'}"))
    assert full["steps"] == 6

    first = tmp_path / "first"
    with pytest.raises(TrainingInterrupted) as stopped:
        train(make_cfg(*common, f"out_dir={first}",
                       f"+callbacks.sig._target_={__name__}.SignalAt",
                       f"+callbacks.sig.batch={stop_batch}"))
    assert stopped.value.signum == signal.SIGTERM
    saved = read_checkpoint(first / "checkpoints" / "last.ckpt")
    assert saved["ganzoo"]["d_step"] == stop_batch
    assert saved["ganzoo"]["g_step"] == stop_batch // k
    status = json.loads((first / "metrics.json").read_text())
    assert status["status"] == "interrupted" and "SIGTERM" in status["reason"]

    resumed = train(make_cfg(*common, f"out_dir={tmp_path / 'resumed'}",
                             f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"))
    assert resumed["steps"] == 6
    _assert_bit_identical(_weights(tmp_path / "full" / "checkpoints" / "last.ckpt"),
                          _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt"))


@pytest.mark.slow
def test_resume_extends_a_finished_run(make_cfg, tmp_path):
    common = ["lr_decay=none", "log_every=1"]
    train(make_cfg(*common, "steps=8", f"out_dir={tmp_path / 'full'}"))
    train(make_cfg(*common, "steps=5", f"out_dir={tmp_path / 'short'}"))
    extended = train(make_cfg(*common, "steps=8", f"out_dir={tmp_path / 'extended'}",
                              f"ckpt_path={tmp_path / 'short' / 'checkpoints' / 'last.ckpt'}"))
    assert extended["steps"] == 8
    _assert_bit_identical(_weights(tmp_path / "full" / "checkpoints" / "last.ckpt"),
                          _weights(tmp_path / "extended" / "checkpoints" / "last.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_real_signal_to_a_training_process_saves_and_resumes(make_cfg, tmp_path, signum):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "steps=1000000", "log_every=5",
         "eval_every=0", "trainer.enable_progress_bar=false", f"hydra.run.dir={run}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "logs" / "metrics.csv"
    deadline = time.monotonic() + 240
    try:
        while not (log.is_file() and len(log.read_text().splitlines()) > 2):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1].startswith(
        f"stopped: received {signal.Signals(signum).name} at generator step ")
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    g = ckpt["ganzoo"]["g_step"]
    assert g >= 10
    assert json.loads((run / "metrics.json").read_text())["steps"] == g
    resumed = train(make_cfg(f"steps={g + 3}", "log_every=1", "lr_decay=none",
                             f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    assert resumed["steps"] == g + 3


class _NaNGeneratorLossFrom:
    """Mixin: the loss's generator objective (called once per generator step) turns NaN
    from call ``nan_from`` on; each subclass counts its own calls."""

    nan_from = 0
    calls = 0

    def g_loss(self, real_logits, fake_logits):
        type(self).calls += 1
        value = super().g_loss(real_logits, fake_logits)
        return value * float("nan") if type(self).calls >= self.nan_from else value


class NaNFromCall9(_NaNGeneratorLossFrom, NonSaturating):
    nan_from = 9


def test_divergence_stops_with_the_step_and_keeps_finite_checkpoint(make_cfg, tmp_path):
    NaNFromCall9.calls = 0
    cfg = make_cfg(f"loss._target_={__name__}.NaNFromCall9", "steps=50", "log_every=3",
                   "ckpt_every=2")
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    kept = tmp_path / "checkpoints" / "last.ckpt"
    assert str(err.value) == ("train/g_loss became nan or inf at generator step 9; "
                              f"the last finite checkpoint is {kept}")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "diverged" and saved["reason"] == str(err.value)
    ckpt = read_checkpoint(kept)
    assert ckpt["ganzoo"]["g_step"] == 8
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values())


class ReverseKLNaNFromCall5(_NaNGeneratorLossFrom, FGAN):
    nan_from = 5


def test_fgan_divergence_names_what_to_try(make_cfg, tmp_path):
    ReverseKLNaNFromCall5.calls = 0
    cfg = make_cfg("loss=fgan", "loss.divergence=reverse_kl",
                   f"loss._target_={__name__}.ReverseKLNaNFromCall5", "steps=20",
                   "log_every=1", "ckpt_every=100")
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    assert str(err.value) == (
        "train/g_loss became nan or inf at generator step 5; no checkpoint had been written "
        "yet; f-GAN reverse_kl's practical generator loss grows as exp(-V(G(z))) and "
        "overflows where the data density vanishes; loss.generator=saddle avoids it "
        "(docs/losses.md)")
    # Only the divergences whose practical generator loss is exp(-V) get the hint.
    hinted = {d for d in ("kl", "reverse_kl", "pearson", "neyman", "squared_hellinger", "js",
                          "gan", "total_variation") if FGAN(d).divergence_hint}
    assert hinted == {"reverse_kl", "neyman", "squared_hellinger"}
    assert FGAN("reverse_kl", generator="saddle").divergence_hint is None
    assert FGAN("squared_hellinger", generator="saddle").divergence_hint is None
    assert NonSaturating().divergence_hint is None
    # Neyman's saddle loss, 2 exp(-V/2) - 2, grows too: no update is offered as the fix.
    neyman = ("f-GAN neyman's generator loss, practical or saddle, grows exponentially as "
              "V(G(z)) falls and overflows where the data density vanishes, where this "
              "divergence is infinite (docs/losses.md)")
    assert FGAN("neyman").divergence_hint == FGAN("neyman", "saddle").divergence_hint == neyman


class NaNEveryThird(NonSaturating):
    """A loss whose critic objective is NaN on every third call."""

    calls = 0

    def d_loss(self, real_logits, fake_logits):
        NaNEveryThird.calls += 1
        value = super().d_loss(real_logits, fake_logits)
        return value * float("nan") if NaNEveryThird.calls % 3 == 0 else value


def test_skip_mode_skips_nonfinite_steps_and_continues(make_cfg):
    NaNEveryThird.calls = 0
    metrics = train(make_cfg(f"loss._target_={__name__}.NaNEveryThird", "steps=9",
                             "log_every=9", "nonfinite=skip"))
    assert metrics["status"] == "completed" and metrics["steps"] == 9
    assert metrics["train/skipped_steps"] == 3.0


@pytest.mark.slow
def test_cli_divergence_is_one_line_and_nonzero(tmp_path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "steps=200", "log_every=1", "ckpt_every=1",
         "optim.g.lr=1e30", "optim.d.lr=1e30", "trainer.enable_progress_bar=false",
         f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 3
    # Adam with lr 1e30 breaks the networks in their first update.
    assert res.stderr.strip().splitlines() == [
        "error: training diverged: train/g_loss became nan or inf at generator step 1; "
        "no checkpoint had been written yet"]


def test_bad_checkpoints_are_one_clear_message(tmp_path, make_cfg):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.ckpt")
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        read_checkpoint(text)
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="is not a ganzoo checkpoint"):
        read_checkpoint(tmp_path / "other.ckpt")
    train(make_cfg("steps=2", f"out_dir={tmp_path / 'run'}"))
    good = (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(tmp_path / "cut.ckpt")
    with pytest.raises(CheckpointError, match="another architecture"):
        train(make_cfg("steps=4", "model.generator.hidden_dim=32",
                       f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"))


@pytest.mark.parametrize("resume_from", ["step_000005.ckpt", "last.ckpt"])
def test_resume_at_an_evaluation_step_is_bit_identical(make_cfg, tmp_path, resume_from):
    # k = 5, a batch-norm generator, an evaluation and a checkpoint at generator step 5:
    # neither the evaluation nor its picture may change state, and the resumed run does
    # not evaluate step 5 again.
    common = ["loss=wgan_gp", "steps=10", "eval_every=5", "ckpt_every=5", "log_every=1",
              "model.generator.batch_norm=true"]
    full = train(make_cfg(*common, f"out_dir={tmp_path / 'full'}"))
    first = tmp_path / "first"
    with pytest.raises(TrainingInterrupted):
        train(make_cfg(*common, f"out_dir={first}", f"+callbacks.sig._target_={__name__}.SignalAt",
                       "+callbacks.sig.batch=25"))  # right after generator step 5 (k = 5)
    assert sorted(p.name for p in (first / "samples").iterdir()) == ["step_000005.png"]
    ckpt = first / "checkpoints" / resume_from
    assert read_checkpoint(ckpt)["ganzoo"]["g_step"] == 5
    resumed = train(make_cfg(*common, f"out_dir={tmp_path / 'resumed'}", f"ckpt_path={ckpt}"))
    assert sorted(p.name for p in (tmp_path / "resumed" / "samples").iterdir()) == [
        "step_000010.png"]  # step 5 was evaluated before the checkpoint, not again
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == [
        "last.ckpt"]  # no second step-5 checkpoint after a critic step; step 10 is the end
    _assert_bit_identical(_weights(tmp_path / "full" / "checkpoints" / "last.ckpt"),
                          _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt"))
    assert {k: v for k, v in resumed.items() if k.startswith("eval/")} == {
        k: v for k, v in full.items() if k.startswith("eval/")}


def test_a_runaway_loss_counts_as_diverged(make_cfg, tmp_path):
    # A critic rate of 1e4 drives the losses to ~1e28 while they stay finite.
    cfg = make_cfg("optim.d.lr=1e4", "steps=50", "log_every=1", "ckpt_every=1")
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    kept = tmp_path / "checkpoints" / "last.ckpt"
    assert str(err.value) == ("train/d_loss ran away (its magnitude passed loss_limit=1e+08) "
                              f"at generator step 2; the last finite checkpoint is {kept}")
    assert read_checkpoint(kept)["ganzoo"]["g_step"] == 1  # step 2 was not saved
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "diverged"


def test_the_loss_limit_is_a_magnitude_in_both_modes():
    from ganzoo.guard import NonFiniteGuard

    stop = NonFiniteGuard("stop", limit=10.0)
    for step, value in enumerate([1.0, -9.0, -11.0, float("nan")], start=1):
        stop.skip(torch.tensor(value), "train/g_loss", step)
    with pytest.raises(NonFiniteLossError) as err:
        stop.check(torch.device("cpu"))
    assert str(err.value) == ("train/g_loss ran away (its magnitude passed loss_limit=10) "
                              "at generator step 3")
    skip = NonFiniteGuard("skip", limit=10.0)
    assert [skip.skip(torch.tensor(v), "train/d_loss", 1) for v in (9.0, -10.5, 1.0)] == [
        False, True, False]
    off = NonFiniteGuard("stop", limit=None)
    off.skip(torch.tensor(1e30), "train/d_loss", 1)
    off.check(torch.device("cpu"))  # no limit: finite is fine
    with pytest.raises(ValueError, match=r"^loss_limit must be a positive number or null, "
                                         r"got 0$"):
        NonFiniteGuard("stop", limit=0)


def _assert_same_state(a_path, b_path):
    """Weights (EMA included), optimiser and scheduler states, tensor by tensor."""
    a, b = read_checkpoint(a_path), read_checkpoint(b_path)
    _assert_bit_identical(a["state_dict"], b["state_dict"])
    for key in ("optimizer_states", "lr_schedulers"):
        assert len(a.get(key, [])) == len(b.get(key, [])), key
        for x, y in zip(a.get(key, []), b.get(key, []), strict=True):
            _assert_equal_nested(x, y, key)


def _assert_equal_nested(x, y, where):
    if isinstance(x, torch.Tensor):
        assert torch.equal(x, y), where
    elif isinstance(x, dict):
        assert x.keys() == y.keys(), where
        for k in x:
            _assert_equal_nested(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _assert_equal_nested(u, v, f"{where}[{i}]")
    else:
        assert x == y, where


DIGITS = ("data=digits", "data.n_train=64", "data.batch_size=8", "data.clusters=4",
          "model.generator.width=8", "model.discriminator.width=8")


@pytest.mark.parametrize("setting, signum, batch", [
    # Every configuration, stopped by SIGTERM mid-interval and by SIGINT right after a
    # checkpoint's generator step (ckpt_every=2; k = 5 for wgan_gp: 5 batches per step).
    pytest.param((), signal.SIGTERM, 5, id="ring-sigterm-anywhere"),
    pytest.param((), signal.SIGINT, 4, id="ring-sigint-at-ckpt"),
    pytest.param(("lr_decay=linear",), signal.SIGTERM, 3, id="ring-linear-sigterm-anywhere"),
    pytest.param(("lr_decay=linear",), signal.SIGINT, 4, id="ring-linear-sigint-at-ckpt"),
    pytest.param(("loss=wgan_gp",), signal.SIGTERM, 13, id="wgan_gp-sigterm-anywhere",
                 marks=pytest.mark.slow),
    pytest.param(("loss=wgan_gp",), signal.SIGINT, 20, id="wgan_gp-sigint-at-ckpt",
                 marks=pytest.mark.slow),
    pytest.param(DIGITS, signal.SIGTERM, 3, id="digits-sigterm-anywhere",
                 marks=pytest.mark.slow),
    pytest.param(DIGITS, signal.SIGINT, 2, id="digits-sigint-at-ckpt",
                 marks=pytest.mark.slow),
])
def test_resume_after_a_signal_restores_every_state(make_cfg, tmp_path, setting, signum, batch):
    """Weights, EMA, optimiser moments, the LR schedule and metrics.json of a run stopped
    by a signal and resumed equal those of the run that never stopped (ckpt_every=2: the
    at-ckpt cases stop right after a checkpoint's generator step)."""
    common = [*setting, "steps=6", "log_every=1", "ckpt_every=2", "eval_every=3"]
    full = train(make_cfg(*common, f"out_dir={tmp_path / 'full'}"))
    with pytest.raises(TrainingInterrupted) as stopped:
        train(make_cfg(*common, f"out_dir={tmp_path / 'first'}",
                       f"+callbacks.sig._target_={__name__}.SignalAt",
                       f"+callbacks.sig.batch={batch}", f"+callbacks.sig.signum={int(signum)}"))
    assert stopped.value.signum == signum
    resumed = train(make_cfg(*common, f"out_dir={tmp_path / 'resumed'}",
                             f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"))
    _assert_same_state(tmp_path / "full" / "checkpoints" / "last.ckpt",
                       tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    drop = ("wall_time_s",)
    assert {k: v for k, v in resumed.items() if k not in drop} == {
        k: v for k, v in full.items() if k not in drop}
    on_disk = [json.loads((tmp_path / run / "metrics.json").read_text())
               for run in ("full", "resumed")]
    for record in on_disk:
        record.pop("wall_time_s")
    assert on_disk[0] == on_disk[1] and on_disk[0]["status"] == "completed"
