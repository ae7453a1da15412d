"""The plugin contracts as a new user meets them: a loss written from docs/extending.md,
a loss that needs real logits in its generator step, every loss x every penalty, and
Lightning's own callbacks acting on ganzoo's figures."""

from __future__ import annotations

import re
import sys
import types

import lightning as L
import pytest
import torch

from ganzoo.losses import NonSaturating
from tests.conftest import ROOT, group_options
from train import train

TINY_EXTRACTOR = "metrics.extractor={_target_:tests.tiny_extractor.TinyFeatures}"


def _doc_module(section: str, name: str) -> types.ModuleType:
    """The first python block of a section of docs/extending.md, importable as ``name``."""
    text = (ROOT / "docs" / "extending.md").read_text()
    part = text.split(f"## {section}\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", part, re.S).group(1)
    module = types.ModuleType(name)
    exec(compile(code, f"docs/extending.md ({section})", "exec"), module.__dict__)
    return module


@pytest.fixture
def doc_loss(monkeypatch):
    module = _doc_module("A loss", "mylosses")
    monkeypatch.setitem(sys.modules, "mylosses", module)
    return module


def test_the_documented_loss_trains_end_to_end(make_cfg, doc_loss, tmp_path):
    source = re.search(r"```python\n(.*?)```",
                       (ROOT / "docs/extending.md").read_text().split("## A loss\n")[1],
                       re.S).group(1)
    assert len(source.strip().splitlines()) < 30  # a relativistic loss in under 30 lines
    metrics = train(make_cfg("loss._target_=mylosses.RelativisticAverage", "steps=6",
                             "log_every=2", "eval_every=3"))
    assert metrics["status"] == "completed" and metrics["steps"] == 6
    assert "train/divergence" not in metrics  # it defines none: nothing logged, no crash
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("train/d_loss", "train/g_loss"))
    header = (tmp_path / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train/divergence" not in header and "train/g_loss" in header


class Spy(NonSaturating):
    """Records the real logits each objective receives."""

    needs_real_logits = True

    def __init__(self) -> None:
        super().__init__()
        self.d_real, self.g_real = [], []

    def d_loss(self, real_logits, fake_logits):
        if torch.is_grad_enabled():  # a critic step (divergence() calls it without grad)
            self.d_real.append(real_logits.detach().clone())
        return super().d_loss(real_logits, fake_logits)

    def g_loss(self, real_logits, fake_logits):
        self.g_real.append(real_logits)
        return super().g_loss(real_logits, fake_logits)


class NoRealSpy(NonSaturating):
    def __init__(self) -> None:
        super().__init__()
        self.g_real = []

    def g_loss(self, real_logits, fake_logits):
        self.g_real.append(real_logits)
        return super().g_loss(real_logits, fake_logits)


def _loss_of(monkeypatch, cls):
    made = []

    def build(*args, **kwargs):
        made.append(cls())
        return made[-1]

    monkeypatch.setitem(sys.modules, "spyloss", types.SimpleNamespace(Spy=build))
    return made


@pytest.mark.parametrize("k", [1, 3])
def test_g_loss_gets_the_critic_steps_real_logits(make_cfg, monkeypatch, k, tmp_path):
    """With the critic's rate at 1e-30 its fp32 weights stay fixed, so the generator step's real
    logits (the current critic on the last critic step's real batch) equal, exactly, the
    ones that critic step saw."""
    made = _loss_of(monkeypatch, Spy)
    train(make_cfg("loss._target_=spyloss.Spy", f"n_critic={k}", "steps=4", "optim.d.lr=1e-30"))
    (loss,) = made
    assert len(loss.g_real) == 4 and len(loss.d_real) == 4 * k
    for i, g_real in enumerate(loss.g_real):
        assert not g_real.requires_grad
        torch.testing.assert_close(g_real, loss.d_real[(i + 1) * k - 1], rtol=0, atol=0)
    # a trained critic: the generator step sees the updated critic, not the old logits
    made.clear()
    train(make_cfg("loss._target_=spyloss.Spy", "steps=3", f"out_dir={tmp_path / 'trained'}"))
    (loss,) = made
    assert not torch.equal(loss.g_real[0], loss.d_real[0])


def test_losses_that_do_not_ask_get_no_real_logits(make_cfg, monkeypatch):
    made = _loss_of(monkeypatch, NoRealSpy)
    train(make_cfg("loss._target_=spyloss.Spy", "steps=3"))
    assert made[0].g_real == [None, None, None]


LOSSES = group_options("loss")
PENALTIES = group_options("penalty")


@pytest.mark.slow
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_penalty_composes_with_every_loss(make_cfg, loss, penalty):
    metrics = train(make_cfg(f"loss={loss}", f"penalty={penalty}", "steps=2", "log_every=1",
                             "n_critic=1"))
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    if penalty == "none":
        assert metrics["train/penalty"] == 0.0
    else:
        assert metrics["train/penalty"] > 0.0


class Capture(L.Callback):
    """trainer.callback_metrics as the run ends."""

    seen: dict = {}

    def on_train_end(self, trainer, pl_module) -> None:
        Capture.seen = {k: float(v) for k, v in trainer.callback_metrics.items()}


CAPTURE = "+callbacks.capture._target_=tests.test_contracts.Capture"


def test_figures_reach_callback_metrics(make_cfg):
    metrics = train(make_cfg(CAPTURE, "steps=6", "log_every=2", "eval_every=3"))
    for key in ("train/d_loss", "train/g_loss", "train/divergence", "eval/modes", "eval/hq",
                "eval/reverse_kl"):
        assert Capture.seen[key] == pytest.approx(metrics[key], rel=1e-6), key


def _early_stopping(monitor: str, mode: str) -> list[str]:
    return ["+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping",
            f"+callbacks.stop.monitor={monitor}", f"+callbacks.stop.mode={mode}",
            "+callbacks.stop.patience=1", "+callbacks.stop.min_delta=1000"]


def test_early_stopping_and_best_checkpoint_on_the_ring(make_cfg, tmp_path):
    """min_delta 1000 %: no evaluation counts as an improvement on the first, so patience 1
    stops after the second evaluation (step 4 of 12); best.ckpt is the first (step 2)."""
    metrics = train(make_cfg("steps=12", "eval_every=2", "checkpoint.best=eval/hq",
                             *_early_stopping("eval/hq", "max")))
    assert metrics["status"] == "stopped early" and metrics["steps"] == 4
    assert metrics["reason"] == "a callback stopped training at generator step 4"
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["ganzoo"]["g_step"] == 2
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "checkpoints/last.ckpt").is_file()


def test_model_checkpoint_monitors_fid_on_digits(make_cfg, tmp_path):
    """A stock ModelCheckpoint from the command line keeps the evaluation with the lowest
    FID (tiny extractor); its file name carries the generator step."""
    cfg = make_cfg("data=digits", "model.generator.width=4", "model.discriminator.width=4",
                   "data.n_train=256", "metrics.fid=true", "metrics.n_samples=64",
                   TINY_EXTRACTOR, f"metrics.cache_dir={tmp_path / 'cache'}",
                   "steps=6", "eval_every=2", CAPTURE,
                   "+callbacks.best._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                   "+callbacks.best.monitor=eval/fid", "+callbacks.best.mode=min",
                   f"+callbacks.best.dirpath={tmp_path / 'best'}",
                   "+callbacks.best.filename='fid-{step}'")
    metrics = train(cfg)
    files = sorted(p.name for p in (tmp_path / "best").iterdir())
    assert len(files) == 1 and re.fullmatch(r"fid-step=[246]\.ckpt", files[0])
    assert Capture.seen["eval/fid"] == pytest.approx(metrics["eval/fid"], rel=1e-6)


def test_a_datamodule_missing_the_contract_is_named(make_cfg):
    from ganzoo.config import ConfigError
    from ganzoo.data.base import check_datamodule

    class Half(L.LightningDataModule):
        name = "half"

    with pytest.raises(ConfigError, match=r"^data: Half lacks shape, seek \(the datamodule "
                                          r"contract: ganzoo.data.base\)$"):
        check_datamodule(Half())


def test_no_file_in_the_library_is_long():
    long = {p.relative_to(ROOT).as_posix(): n for p in (ROOT / "ganzoo").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 320}
    assert long == {}




def test_the_documented_own_trainer_runs(monkeypatch):
    monkeypatch.chdir(ROOT)  # the example composes ./conf, as from the repository root
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    module = _doc_module("Your own Trainer", "own_trainer")  # its assert checks the counts
    assert module.gan.g_step == 30
    GlobalHydra.instance().clear()
