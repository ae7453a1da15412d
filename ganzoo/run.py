"""The pieces of one training run that train.py puts together: building the data, module
and trainer from the composed config, and writing the run's outputs and summary.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ganzoo.config import ConfigError

# Figures that are better when larger (checkpoint.mode=auto); every other is minimised.
MAXIMISED = ("eval/hq", "eval/modes", "eval/is")
# Keys of train.yaml's top level that constructors name bare (``n_critic must ...``).
TOP_LEVEL = ("n_critic", "log_every", "nonfinite", "lr_decay", "loss_limit")
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
    import os

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
    import os

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


def check_run_directory(out: Path, resume: Path | None) -> None:
    """A new run never writes over a trained one: a directory holding checkpoints is
    only written to by a run resuming from one of them."""
    held = out / "checkpoints" / "last.ckpt"
    if not held.is_file():
        return
    if resume is not None and resume.resolve().parent == held.parent.resolve():
        return
    raise ConfigError(f"the run directory {out} holds a trained run ({held}); resume "
                      f"it with ckpt_path={held}, or choose another directory")


def record(cfg: DictConfig, out: Path) -> None:
    """The run's ``.hydra/`` record (config.yaml, hydra.yaml, overrides.yaml, as Hydra
    writes them), written only once the run is accepted: train.yaml sets Hydra's own
    ``output_subdir`` to null, so a refused command leaves an existing run's record as
    it was. Rank 0 writes it."""
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.utilities import rank_zero_only

    if not HydraConfig.initialized() or rank_zero_only.rank != 0:
        return
    hydra_cfg = HydraConfig.get()
    where = out / ".hydra"
    where.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, where / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), where / "hydra.yaml")
    OmegaConf.save(hydra_cfg.overrides.task, where / "overrides.yaml")


def crash_report(exc: BaseException, out: Path) -> str:
    """One line for an exception raised inside training (a failing callback, say); its
    traceback goes to ``<run>/traceback.txt`` for whoever debugs it."""
    import traceback

    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    try:
        (out / "traceback.txt").write_text("".join(traceback.format_exception(exc)))
        where = f" (traceback in {out / 'traceback.txt'})"
    except OSError:
        where = ""
    return f"training stopped on an error: {line}{where}"


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


def json_safe(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def write_outputs(out: Path, metrics: dict, evaluation) -> None:
    """metrics.json, and samples.png: the picture of the final generator."""
    from ganzoo.storage import atomic_write

    if metrics["status"] in ("completed", "stopped early") and evaluation.last_picture is not None:
        atomic_write(out / "samples.png", evaluation.last_picture.read_bytes())
    text = json.dumps({k: json_safe(v) for k, v in metrics.items()}, indent=2) + "\n"
    atomic_write(out / "metrics.json", text.encode())


def summary(cfg: DictConfig, metrics: dict, out: Path, n_modes: int | None,
            notes: list[str] = ()) -> None:
    """The few lines a person reads at the end of a run."""
    rows = [("labels", f"{metrics['clusters']} k-means clusters of the images")] \
        if "clusters" in metrics else []
    rows += [("generator steps", f"{metrics['steps']}"),
             ("wall time", f"{metrics['wall_time_s']:.1f} s")]
    if "train/d_loss" in metrics:
        rows.append(("d_loss / g_loss",
                     f"{metrics['train/d_loss']:.4g} / {metrics['train/g_loss']:.4g}"))
    if "eval/modes" in metrics:
        rows += [("modes covered", f"{metrics['eval/modes']:.0f} / {n_modes}"),
                 ("high quality", f"{metrics['eval/hq']:.1f} %"),
                 ("reverse KL", f"{metrics['eval/reverse_kl']:.4f}")]
    if "eval/fid" in metrics:
        rows.append(("FID", f"{metrics['eval/fid']:.2f}"))
    if "eval/kid" in metrics:
        rows.append(("KID", f"{metrics['eval/kid']:.4f} ± {metrics['eval/kid_std']:.4f}"))
    if "eval/is" in metrics:
        rows.append(("IS", f"{metrics['eval/is']:.2f} ± {metrics['eval/is_std']:.2f}"))
    protocol = metrics.get("eval/protocol")
    if protocol:
        rows.append(("measured on", f"{protocol['n_fake']} generated vs {protocol['n_real']} "
                                    f"real images, {protocol['extractor']}"))
    if (out / "checkpoints" / "best.ckpt").is_file():
        rows.append(("best checkpoint", f"{out / 'checkpoints' / 'best.ckpt'} "
                                        f"(by {cfg.checkpoint.best})"))
    rows.append(("run directory", str(out)))
    print(f"\nganzoo · {cfg.data.name} · {cfg.model.name} · {loss_name(cfg)} · seed {cfg.seed}")
    for name, value in rows:
        print(f"  {name:<16} {value}")
    for note in notes:
        print(f"  {note}")


def loss_name(cfg: DictConfig) -> str:
    """The loss as the user chose it (its config name), with its divergence for f-GAN."""
    from hydra.core.hydra_config import HydraConfig

    name = cfg.loss._target_.rsplit(".", 1)[-1].lower()
    if HydraConfig.initialized():
        name = HydraConfig.get().runtime.choices.get("loss", name)
    if "divergence" in cfg.loss:
        name += f" ({cfg.loss.divergence})"
    return name


def resolved(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)
