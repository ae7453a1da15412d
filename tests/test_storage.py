"""A full disk or a second signal while a run writes its files: nothing half-written, the
previous checkpoint kept, one line saying what happened."""

import errno
import json
import os
import signal

import pytest

import ganzoo.storage
from ganzoo.checkpoint import read_checkpoint
from ganzoo.storage import StorageError, atomic_write, deferred_signals
from train import TrainingFailed, TrainingInterrupted, train

from .test_reliability import SignalAt

FULL = "No space left on device"


@pytest.fixture
def disk_full_for(monkeypatch):
    """disk_full_for(name): writing a file called ``name`` fails as on a full disk (after
    part of it has reached the temporary file)."""
    real = ganzoo.storage._write

    def arm(*names, action=None):
        def write(handle, data):
            if os.path.basename(handle.name).strip(".").removesuffix(".tmp") in names:
                if action is not None:
                    action()
                    return real(handle, data)
                handle.write(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, FULL)
            return real(handle, data)

        monkeypatch.setattr(ganzoo.storage, "_write", write)

    return arm


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*.tmp"))


def test_atomic_write_keeps_the_previous_file(tmp_path, disk_full_for):
    target = tmp_path / "metrics.json"
    atomic_write(target, b"old")
    disk_full_for("metrics.json")
    with pytest.raises(StorageError) as err:
        atomic_write(target, b"new content")
    assert str(err.value) == (f"could not write {target} ({FULL}); the previous "
                              "metrics.json is as it was")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_periodic_checkpoint_on_a_full_disk_keeps_the_previous_one(make_cfg, tmp_path,
                                                                       disk_full_for):
    disk_full_for("step_000004.ckpt")
    with pytest.raises(StorageError) as err:
        train(make_cfg("steps=6", "ckpt_every=2", "log_every=1"))
    step4 = tmp_path / "checkpoints" / "step_000004.ckpt"
    assert str(err.value) == f"could not write {step4} ({FULL}); nothing was written there"
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["ganzoo"]["g_step"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "last.ckpt", "step_000002.ckpt"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["reason"] == str(err.value)


def test_sigterm_on_a_full_disk_keeps_its_exit_status_and_says_what_was_kept(
        make_cfg, tmp_path, disk_full_for):
    disk_full_for("last.ckpt")  # the final save fails
    with pytest.raises(TrainingInterrupted) as stopped:
        train(make_cfg("steps=6", "ckpt_every=100", "log_every=1",
                       f"+callbacks.sig._target_={SignalAt.__module__}.SignalAt",
                       "+callbacks.sig.batch=3"))
    assert stopped.value.signum == signal.SIGTERM  # train.py exits 128 + 15
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert str(stopped.value) == (f"received SIGTERM at generator step 3; could not write "
                                  f"{last} ({FULL}); nothing was written there")
    assert not last.parent.exists() or list(last.parent.iterdir()) == []
    assert _leftovers(tmp_path) == []
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"


def test_a_second_signal_during_the_final_save_lets_it_finish(make_cfg, tmp_path,
                                                               disk_full_for):
    # The first Ctrl-C stops training at step 3; the second arrives while last.ckpt is
    # being written. The write completes, metrics.json too, and no traceback is raised.
    disk_full_for("last.ckpt", action=lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(TrainingInterrupted) as stopped:
        train(make_cfg("steps=6", "ckpt_every=100", "log_every=1",
                       f"+callbacks.sig._target_={SignalAt.__module__}.SignalAt",
                       "+callbacks.sig.batch=3", "+callbacks.sig.signum=2"))
    assert stopped.value.signum == signal.SIGINT
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["ganzoo"]["g_step"] == 3
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"


def test_deferred_signals_are_noted_then_restored():
    before = signal.getsignal(signal.SIGINT)
    with deferred_signals() as late:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert late == [signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_failing_callback_keeps_the_run_and_is_one_line(make_cfg, tmp_path):
    # EarlyStopping on a figure no evaluation logs raises at the first evaluation.
    with pytest.raises(TrainingFailed) as err:
        train(make_cfg("steps=6", "eval_every=2", "ckpt_every=100",
                       "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping",
                       "+callbacks.stop.monitor=eval/nope"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("training stopped on an error: RuntimeError: Early stopping "
                              "conditioned on metric `eval/nope` which is not available.")
    assert message.endswith(f"(traceback in {tmp_path / 'traceback.txt'}); the checkpoint "
                            f"of generator step 2 is {last}")
    assert read_checkpoint(last)["ganzoo"]["g_step"] == 2
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["reason"] == message
    assert "EarlyStopping" in (tmp_path / "traceback.txt").read_text()
