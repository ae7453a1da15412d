"""The pieces of one training run that train.py puts together: building the data, module
and trainer from the composed config, and writing the run's outputs and summary.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ganzoo.config import ConfigError

# Figures that are better when larger (checkpoint.mode=auto); every other is minimised.
MAXIMISED = ("eval/hq", "eval/modes", "eval/is", "eval/confident")
# Keys of train.yaml's top level that constructors name bare (``n_critic must ...``).
TOP_LEVEL = ("n_critic", "log_every", "nonfinite", "lr_decay", "loss_limit", "block_steps")
# Config nodes a message may name alone (``model: dcgan generates ...``).
GROUPS = ("model", "data", "loss", "penalty", "eval", "optim", "trainer", "metrics", "logger")


def instantiate(node, what: str, **kwargs):
    """hydra.utils.instantiate with the constructor's own message, one line, on failure."""
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause, where = exc, what
        while isinstance(cause, InstantiationException):
            # Hydra names the failing node (model.generator) on its last line.
            found = re.search(r"\nfull_key: (\S+)\s*$", str(cause))
            where = found.group(1) if found else where
            if cause.__cause__ is None:
                break
            cause = cause.__cause__
        raise ConfigError(_named(where, cause)) from exc
    except ValueError as exc:
        raise ConfigError(_named(what, exc)) from exc


def _named(what: str, exc: BaseException) -> str:
    """The message, naming its config key: as it is when it names one (``data.shape: ...``,
    ``n_critic must ...``), a bare argument completed by its node (``hidden_dim must`` in
    model.generator: ``model.generator.hidden_dim must``), else prefixed by the node."""
    text = str(exc)
    if re.match(r"^[a-z_]+(\.[a-z_0-9]+)+(:| must |=)", text) or re.match(
            rf"^({'|'.join(GROUPS)}):", text):
        return text
    bare = re.match(r"^([a-z_]+) must ", text)
    if bare:
        return text if bare.group(1) in TOP_LEVEL else f"{what}.{text}"
    return f"{what}: {text}"


def set_threads(cfg: DictConfig) -> int:
    """torch's CPU threads for this run (``threads``); the number in use.

    ``auto``: one thread for toy data, whose small matrix products gain nothing from more
    threads and lose to their synchronisation (on a busy 2-core machine 2 threads ran the
    ring 3.4x slower than 1); for images torch's default, shared out among the parallel
    jobs of ``hydra/launcher=joblib``. A number sets it.
    """
    import torch

    threads = cfg.get("threads", "auto")
    if threads == "auto":
        threads = None
        if len(cfg.data.shape) == 1:
            threads = 1
        elif _joblib_jobs() > 1:
            threads = max(1, (os.cpu_count() or 1) // _joblib_jobs())
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _joblib_jobs() -> int:
    """How many jobs hydra/launcher=joblib runs at once (1 for any other launcher)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    jobs = launcher.get("n_jobs", -1)
    return (os.cpu_count() or 1) if jobs is None or jobs < 1 else int(jobs)


def build(cfg: DictConfig):
    """The run's datamodule and GAN module; each bad value is a one-line ConfigError."""
    from ganzoo.data.base import check_datamodule

    dm = instantiate(cfg.data, "data")
    check_datamodule(dm)
    try:  # read the data now: missing files are refused before the run writes anything
        dm.setup("fit")  # (Lightning's own setup call then finds it done)
    except ValueError as exc:
        raise ConfigError(_named("data", exc)) from exc
    module = instantiate(cfg.model, "model")
    check_labels(module, dm)
    for player in ("g", "d"):
        check_optimizer(cfg.optim[player], getattr(module, f"optimizer_{player}"),
                        f"optim.{player}")
    return dm, module


def check_optimizer(node, factory, key: str) -> None:
    """An optimiser's settings, tried on one parameter now rather than when training starts
    (e.g. Adam's betas left on optim.g._target_=torch.optim.SGD)."""
    import inspect

    import torch

    target = node.get("_target_", "")
    try:
        accepted = inspect.signature(hydra.utils.get_class(target)).parameters
    except Exception:  # noqa: BLE001 - not a class (a factory function): try it as it is
        accepted = None
    if accepted is not None and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = [k for k in node if not k.startswith("_") and k not in accepted]
        if unknown:
            drop = " ".join(f"~{key}.{k}" for k in unknown)
            raise ConfigError(f"{key}: {target} does not take {', '.join(unknown)} (drop "
                              f"{'it' if len(unknown) == 1 else 'them'} with {drop})")
    try:
        factory([torch.nn.Parameter(torch.zeros(1))])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def safe_loading() -> dict:
    """Lightning's own read of a resumed checkpoint, restricted to tensors and plain data
    as ganzoo's read before it (``fit(weights_only=True)``, Lightning >= 2.6)."""
    import inspect

    import lightning as L

    takes = "weights_only" in inspect.signature(L.Trainer.fit).parameters
    return {"weights_only": True} if takes else {}


def check_labels(module, dm) -> None:
    """A conditional model must have as many classes as the data has labels."""
    from ganzoo.nets.layers import check_class_count

    clusters = getattr(dm, "clusters", None)
    source = (f"data.clusters={clusters}" if clusters
              else f"data.num_classes={dm.num_classes}")
    try:
        check_class_count(module.generator, dm.num_classes, source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def make_trainer(cfg: DictConfig, callbacks: list, loggers: list, out: Path):
    """The Lightning Trainer of ``cfg.trainer`` with what a ganzoo run needs: its length in
    optimiser steps, evaluations as validations, atomic checkpoint writes, GAN-aware DDP."""
    from ganzoo.callbacks import AtomicCheckpointIO
    from ganzoo.distributed import check_trainer, make_strategy

    trainer = instantiate(
        cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
        max_steps=cfg.steps * (cfg.n_critic + 1),  # Lightning counts k critic + 1 G steps
        # Evaluations are validations for Lightning's callbacks (there is no val loop):
        # EarlyStopping and ModelCheckpoint then act on them, not on epoch ends.
        check_val_every_n_epoch=None, val_check_interval=cfg.n_critic * max(cfg.eval_every, 1),
        default_root_dir=str(out), log_every_n_steps=1,
        strategy=make_strategy(cfg.trainer),  # ddp: ganzoo's GAN-aware DDP
        plugins=[AtomicCheckpointIO()])  # a failed write keeps the previous checkpoint
    check_trainer(trainer, cfg.trainer)
    return trainer


def callbacks(cfg: DictConfig, out: Path, title: str):
    """ganzoo's callbacks (evaluation, checkpoints, interrupts, progress), the user's."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from ganzoo.callbacks import (
        FinalEvaluation,
        GeneratorStepCheckpoint,
        GeneratorStepProgressBar,
        GracefulInterrupt,
        PeriodicEvaluation,
    )

    interrupt = GracefulInterrupt()
    evaluation = PeriodicEvaluation(cfg.eval_every, out_dir=out, title=title)
    ending = FinalEvaluation(evaluation, interrupt)
    steps = GeneratorStepCheckpoint(cfg.ckpt_every, dirpath=out / "checkpoints",
                                    filename="step_{step:06d}", auto_insert_metric_name=False,
                                    save_last=True, save_top_k=1)
    best = []
    if cfg.checkpoint.best:  # checkpoints/best.ckpt by a figure, after each evaluation
        monitor, mode = cfg.checkpoint.best, cfg.checkpoint.mode
        if mode == "auto":
            mode = "max" if monitor in MAXIMISED else "min"
        if mode not in ("min", "max"):
            raise ConfigError(f"checkpoint.mode must be min, max or auto, got {mode!r}")
        best = [ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor=monitor,
                                mode=mode, save_top_k=1, auto_insert_metric_name=False,
                                save_on_train_epoch_end=False, enable_version_counter=False)]
    extra = [instantiate(node, f"callbacks.{name}")
             for name, node in (cfg.get("callbacks") or {}).items() if node is not None]
    bar = [GeneratorStepProgressBar(every=cfg.log_every)] \
        if cfg.trainer.get("enable_progress_bar", True) else []
    # The interrupt check runs last, so a signal that arrives during this batch's other
    # hooks stops training after this batch.
    return [evaluation, steps, *best, *extra, interrupt, ending, *bar], evaluation, ending


def resolved(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)
