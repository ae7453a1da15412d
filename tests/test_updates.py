"""The loop's update path (ganzoo/updates.py): updates without Lightning's dispatch where
nothing would observe it, bit for bit the Lightning path's; the NVML probe skipped only
where NVML is absent."""

import ctypes
import os

import lightning as L
import pytest
import torch

import ganzoo.gan
from ganzoo import _compat
from ganzoo.updates import direct_updates
from train import train


class ListensToBackward(L.Callback):
    """A callback with a backward hook: its presence sends updates through Lightning."""

    def __init__(self):
        self.calls = 0

    def on_after_backward(self, trainer, pl_module):
        self.calls += 1


def _fit(make_cfg, tmp_path, name, *overrides):
    seen = {}
    original = ganzoo.gan.GAN.on_fit_start

    def record(self):
        original(self)
        seen["direct"] = self._direct
        seen["module"] = self

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ganzoo.gan.GAN, "on_fit_start", record)
        train(make_cfg(f"out_dir={tmp_path / name}", *overrides))
    module = seen["module"]
    return seen["direct"], module, module.trainer


@pytest.mark.parametrize("loss", ["nonsaturating", "wgan_gp"])
def test_direct_updates_equal_the_lightning_path(make_cfg, tmp_path, loss):
    cb = ["+callbacks.listen._target_=tests.test_updates.ListensToBackward"]
    direct, fast, fast_trainer = _fit(make_cfg, tmp_path, "direct", f"loss={loss}", "steps=8")
    dispatched, slow, slow_trainer = _fit(make_cfg, tmp_path, "lightning", f"loss={loss}",
                                          "steps=8", *cb)
    assert direct is True and dispatched is False
    k = 5 if loss == "wgan_gp" else 1
    listener = next(c for c in slow_trainer.callbacks if isinstance(c, ListensToBackward))
    assert listener.calls == 8 * (k + 1)  # every backward went through Lightning
    assert fast_trainer.global_step == slow_trainer.global_step == 8 * (k + 1)
    a, b = fast.state_dict(), slow.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert fast.last_train == slow.last_train


def test_what_sends_updates_through_lightning(make_cfg, tmp_path):
    _, module, trainer = _fit(make_cfg, tmp_path, "run", "steps=2")
    assert direct_updates(module, trainer)

    class Precise(ganzoo.gan.GAN):
        def on_before_backward(self, loss):
            pass

    module.__class__ = Precise  # a module hook on backward
    assert not direct_updates(module, trainer)
    module.__class__ = ganzoo.gan.GAN
    trainer.callbacks.append(ListensToBackward())
    assert not direct_updates(module, trainer)


def test_nvml_check_removed_only_without_nvml(monkeypatch):
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # NVML present
    _compat.skip_nvml_check_without_nvml()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"

    def absent(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", absent)
    _compat.skip_nvml_check_without_nvml()
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
