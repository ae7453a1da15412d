"""Loggers: pictures through each logger's own image API, and a W&B logger that needs no
account.

``logger=csv`` (default) writes figures only; pictures stay files in the run directory.
``logger=tensorboard`` adds them with ``SummaryWriter.add_image``. ``logger=wandb`` runs
offline unless W&B credentials are present (``WANDB_API_KEY``, a netrc entry for the
W&B host), names the run after its overrides and groups a multirun sweep, and says at
the end how to upload an offline run (``wandb sync``).
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

# Overrides that say where or how a run is written or shown, not what it trains.
_NOT_IN_NAME = ("out_dir", "ckpt_path", "logger", "hydra.", "trainer.enable_progress_bar",
                "log_every", "eval_every", "ckpt_every", "checkpoint.", "threads",
                "metrics.cache_dir", "eval.cache_dir", "callbacks")


def log_image(loggers: Iterable[Logger], key: str, path: str | Path, step: int) -> None:
    """Send a saved picture to every logger that takes images, against ``step``."""
    path = Path(path)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            import numpy as np
            from PIL import Image

            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"))  # (H, W, 3) uint8
            logger.experiment.add_image(key, array, global_step=step, dataformats="HWC")
            logger.experiment.flush()
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)


def has_wandb_credentials() -> bool:
    """True if W&B could log in without asking: an API key in the environment or a
    netrc entry for the W&B host (``WANDB_BASE_URL``, default api.wandb.ai)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).netloc
    path = os.environ.get("NETRC") or Path.home() / ".netrc"
    try:
        return netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _overrides() -> tuple[list[str], str | None]:
    """This job's command-line overrides and, in a multirun, the sweep's directory."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], None
    hc = HydraConfig.get()
    sweep = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    return list(hc.overrides.task), sweep


def run_name_and_group(overrides: list[str], sweep_dir: str | None) -> tuple[str, str]:
    """Name: the overrides that change what is trained (``loss=wgan_gp,seed=1``; not
    out_dir, logger, intervals, ...). Group: the name without the seed, so the seeds of
    one configuration are one group; in a multirun, prefixed by the sweep."""
    def key(override: str) -> str:
        return override.lstrip("+~").split("=", 1)[0]

    kept = [o for o in overrides if not key(o).startswith(_NOT_IN_NAME)]
    name = ",".join(kept) or "default"
    config = ",".join(o for o in kept if key(o) != "seed") or "default"
    return name, config if sweep_dir is None else f"{sweep_dir}: {config}"


class GanzooWandbLogger(WandbLogger):
    """Lightning's WandbLogger, silent on the console and closed explicitly by train()."""

    def __init__(self, upload_checkpoint: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.upload_checkpoint = upload_checkpoint
        if self._wandb_init.get("anonymous") is None:
            # wandb warns about the deprecated setting even when it is None.
            self._wandb_init.pop("anonymous", None)

    def finish_run(self, metrics: dict, checkpoint: Path | None) -> None:
        """The run's outcome in its W&B summary (status, wall time, final figures), and
        the final checkpoint as a model artifact when ``log_model`` asks for it."""
        summary = {k: v for k, v in metrics.items()
                   if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        self.experiment.summary.update(summary)
        if self.upload_checkpoint and checkpoint is not None and checkpoint.is_file():
            import wandb

            artifact = wandb.Artifact(f"model-{self.experiment.id}", type="model",
                                      metadata={"steps": metrics.get("steps")})
            artifact.add_file(str(checkpoint), name="last.ckpt")
            self.experiment.log_artifact(artifact, aliases=["latest"])

    def close(self) -> str | None:
        """Finish the run (flushing it to disk); return a line telling where it is."""
        if self._experiment is None:
            return None
        run = self._experiment
        mode = run.settings.mode
        offline = mode in ("offline", "dryrun")
        sync_dir = run.settings.sync_dir
        url = run.url if mode == "online" else None  # (asking an offline run for it warns)
        run.finish()
        self._experiment = None
        if offline:
            return f"W&B run saved offline; upload it with: wandb sync {sync_dir}"
        return f"W&B run: {url}" if url else None


def wandb_logger(save_dir: str, project: str = "ganzoo", entity: str | None = None,
                 name: str | None = None, group: str | None = None, mode: str = "auto",
                 tags: list[str] | None = None, job_type: str = "train",
                 log_model: bool = False) -> GanzooWandbLogger:
    """The W&B logger of ``conf/logger/wandb.yaml``.

    ``mode``: ``auto`` (online when credentials are present, else offline; a
    ``WANDB_MODE`` in the environment wins), ``online``, ``offline`` or ``disabled``.
    Run files go to ``<save_dir>/wandb``. ``log_model``: the final ``last.ckpt`` becomes
    a model artifact of the run.
    """
    import wandb

    from ganzoo.config import ConfigError

    if mode not in ("auto", "online", "offline", "disabled"):
        raise ConfigError(f"logger.wandb.mode must be auto, online, offline or disabled, "
                          f"got {mode!r}")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if has_wandb_credentials()
                                                 else "offline")
    auto_name, auto_group = run_name_and_group(*_overrides())
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return GanzooWandbLogger(
        name=name or auto_name, group=group or auto_group, project=project, entity=entity,
        save_dir=save_dir, tags=list(tags or []), mode=mode, job_type=job_type,
        upload_checkpoint=bool(log_model),
        # wandb's own banners are replaced by one line in ganzoo's end-of-run report.
        settings=wandb.Settings(silent=True))


def finish_loggers(loggers: Iterable[Logger], metrics: dict, checkpoint: Path | None) -> None:
    """Hand the run's outcome to the loggers that keep one (W&B's summary)."""
    for logger in loggers:
        if isinstance(logger, GanzooWandbLogger):
            logger.finish_run(metrics, checkpoint)


def close_loggers(loggers: Iterable[Logger]) -> list[str]:
    """Flush and close every logger that needs it; the lines to show the user."""
    notes = []
    for logger in loggers:
        close = getattr(logger, "close", None)
        if callable(close):
            note = close()
            if note:
                notes.append(note)
    return notes
