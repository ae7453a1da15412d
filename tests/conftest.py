"""Shared fixtures: compose the real Hydra config exactly as train.py does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Keep Python's bytecode caches in this process and every child it starts (train.py run
# as a user runs it, DDP and joblib workers), even where the environment turns them off
# (PYTHONDONTWRITEBYTECODE=1): otherwise each child compiles torch, Lightning and their
# dependencies from source, which on a fresh clone is most of a subprocess test's time.
# What the tests run is unchanged; only the caches are written.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

import ganzoo  # noqa: E402, F401  (registers the config resolvers conf/ uses)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def slow_except(values, *keep):
    """Parameters for parametrize, all but ``keep`` marked slow: ``-m "not slow"`` still
    runs the kept ones."""
    return [v if v in keep else pytest.param(v, marks=pytest.mark.slow) for v in values]


def ring_checkpoint(out: Path, steps: int) -> Path:
    """Train the ring default for ``steps`` steps into ``out``; its last.ckpt."""
    from train import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"out_dir={out}", f"steps={steps}", "eval_every=0",
                                          "data.n_train=256", "data.n_eval=100",
                                          "trainer.enable_progress_bar=false"])
    GlobalHydra.instance().clear()
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def training_figures(cfg) -> tuple[str, ...]:
    """The losses a run of ``cfg`` logs: train/divergence only for a loss defining one
    (the relativistic losses define none)."""
    import hydra

    from ganzoo.losses import GANLoss

    loss = hydra.utils.instantiate(cfg.loss)
    defines = type(loss).divergence is not GANLoss.divergence
    return ("train/d_loss", "train/g_loss", *(("train/divergence",) if defines else ()))


def refusal(cfg) -> str:
    """The one-line message a run of ``cfg`` stops with before training: the config check,
    then building the data and the module (whose constructors check their own values)."""
    from ganzoo import run
    from ganzoo.config import ConfigError, validate

    try:
        validate(cfg)
        run.build(cfg)
    except ConfigError as exc:
        return str(exc)
    raise AssertionError("the config was accepted")


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(*overrides) -> DictConfig writing into tmp_path, small by default."""

    def _make(*overrides: str, fast: bool = True):
        GlobalHydra.instance().clear()
        small = ["steps=6", "log_every=2", "eval_every=0", "data.n_train=512",
                 "data.n_eval=200", "trainer.enable_progress_bar=false",
                 "metrics.fid=false", "metrics.kid=false", "metrics.is=false"] if fast else []
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("train", overrides=[f"out_dir={tmp_path}", *small, *overrides])

    yield _make
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Tests never touch the network: a download through torch.hub (e.g. the Inception
    weights for FID) fails as it would offline."""
    import torch.hub

    def refuse(url, *args, **kwargs):
        raise OSError(f"tests do not download ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_bench",
                                                  ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
