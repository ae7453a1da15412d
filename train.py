"""ganzoo's entry point: train one composition of model, data and loss.

    uv run train.py                                   # ring of 8 Gaussians, MLPs, NS-GAN
    uv run train.py loss=wgan_gp data=grid seed=1 steps=5000
    uv run train.py -m loss=minimax,nonsaturating,lsgan,wgan_gp seed=0,1,2

``train(cfg)`` is importable and returns the final metrics. A run directory holds
metrics.json, samples.png and checkpoints/last.ckpt.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

if __name__ == "__main__" and sys.argv[1:] in (["--help"], ["-h"]):
    from ganzoo import quickhelp  # before Hydra's import: the help needs none of it

    print(quickhelp.text(Path(__file__).resolve().parent / "conf"))
    sys.exit(0)

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import ganzoo  # noqa: E402, F401  (registers the config resolvers conf/ uses)
from ganzoo.storage import StorageError, deferred_signals  # noqa: E402

log = logging.getLogger("ganzoo")


def train(cfg: DictConfig) -> dict:
    """Train the GAN that ``cfg`` composes; write the run's outputs; return its metrics."""
    start = time.perf_counter()
    from ganzoo.config import ConfigError, validate

    validate(cfg)
    import lightning as L  # heavy imports only once the config is known to be good

    from ganzoo import run, rundir
    from ganzoo.checkpoint import CheckpointError
    from ganzoo.distributed import set_entry_script
    from ganzoo.gan import NonFiniteLossError

    # Library housekeeping (Lightning's device summary, matplotlib's one-time font cache
    # build) is not news for the user: only their warnings reach the console.
    for name in ("lightning.pytorch", "lightning.fabric", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out = Path(cfg.out_dir)
    run.set_threads(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # Build (and check): the data, the GAN module (networks, loss, penalty, optimisers,
    # evaluator), the trainer with ganzoo's callbacks and the user's.
    resume = None if cfg.ckpt_path is None else Path(cfg.ckpt_path)
    rundir.check_run_directory(out, resume)
    dm, module = run.build(cfg)
    if resume is not None:
        from ganzoo.checkpoint import check_resume

        check_resume(resume, module)  # weights that fit, the same training settings
    title = f"{dm.name} · {cfg.model.name} · {rundir.loss_name(cfg)}"
    callbacks, evaluation, ending = run.callbacks(cfg, out, title)
    loggers = [run.instantiate(node, f"logger.{name}") for name, node in (cfg.logger or {}).items()]
    trainer = run.make_trainer(cfg, callbacks, loggers, out)
    # Accepted: from here on the run writes into its directory.
    out.mkdir(parents=True, exist_ok=True)
    rundir.record(cfg, out)
    for logger in loggers:  # the resolved config is the run's record (W&B: its run config)
        logger.log_hyperparams(run.resolved(cfg))
    set_entry_script(__file__)  # what DDP re-runs for the other ranks of this node

    # Fit. The stop signal and the final evaluation are settled inside fit
    # (FinalEvaluation, at on_train_end), where under DDP every rank still shares the
    # process group.
    status, reason, crashed = "completed", None, False
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=resume, **run.safe_loading())
    except NonFiniteLossError as exc:
        status, reason = "diverged", str(exc)
    except StorageError as exc:  # a periodic checkpoint could not be written (disk full)
        status, reason = "failed", str(exc)
    except (ConfigError, CheckpointError):
        raise  # refusals (a setting found wrong once the data is set up): one line, exit 2
    except Exception as exc:  # noqa: BLE001 - a callback or plug-in failed: keep the run
        status, reason, crashed = "failed", rundir.crash_report(exc, out), True
    return _finish(cfg, trainer, module, ending, evaluation, loggers, out, status, reason,
                   crashed, start)


def _finish(cfg, trainer, module, ending, evaluation, loggers, out, status, reason, crashed,
            start):
    """After fit: the final evaluation of a resumed finished run, the run's files and
    summary (rank 0), then the outcome: metrics, or the exception that says it."""
    from ganzoo import rundir
    from ganzoo.gan import NonFiniteLossError

    final = ending.figures
    if status == "completed" and not ending.ran:  # a finished run resumed: nothing trained
        final = evaluation.finish(trainer, module, log=False)
    if not trainer.is_global_zero:  # DDP: rank 0 alone writes the run's outputs
        return {}
    # Write: checkpoint, metrics.json, samples.png, the summary. A signal arriving now
    # (a second Ctrl-C) waits until the files are complete.
    with deferred_signals() as late:
        status, reason, metrics = _write(cfg, trainer, module, ending, evaluation, final,
                                         out, status, reason, start, crashed)
        from ganzoo.loggers import close_loggers, finish_loggers

        finish_loggers(loggers, metrics, out / "checkpoints" / "last.ckpt")
        rundir.summary(cfg, metrics, out, getattr(module.evaluator, "n_modes", None),
                       close_loggers(loggers))
    if status == "diverged":
        raise NonFiniteLossError(reason)
    if status == "failed":
        raise TrainingFailed(reason) if crashed else StorageError(reason)
    if status == "interrupted" or late:
        raise TrainingInterrupted(ending.signum or late[0], reason or (
            f"received {signal.Signals(late[0]).name} while writing the run's files; they "
            "were completed first"))
    return metrics


def _write(cfg, trainer, module, ending, evaluation, final, out, status, reason, start,
           crashed=False):
    """The run's last checkpoint and metrics.json; (status, reason, metrics)."""
    from ganzoo import rundir

    ckpt = out / "checkpoints" / "last.ckpt"
    if status == "diverged":  # keep the last finite checkpoint: write nothing over it
        reason += (f"; the last finite checkpoint is {ckpt}" if ckpt.is_file()
                   else "; no checkpoint had been written yet")
        if module.loss.divergence_hint:
            reason += f"; {module.loss.divergence_hint}"
    elif crashed:  # what was trained up to the failure is kept
        saved = _save(trainer, ckpt)
        reason += (f"; the checkpoint of generator step {module.g_step} is {ckpt}"
                   if saved is None else f"; {saved}")
    elif status == "completed":
        saved = _save(trainer, ckpt)
        if ending.signum:
            status = "interrupted"
            reason = (f"received {signal.Signals(ending.signum).name} at generator step "
                      f"{module.g_step}; " + (f"resume with ckpt_path={ckpt}" if saved is None
                                              else saved))
        elif saved is not None:
            status, reason = "failed", saved
        elif module.total_steps and module.g_step < module.total_steps and ending.ran:
            status = "stopped early"
            reason = f"a callback stopped training at generator step {module.g_step}"
    metrics: dict = {"status": status, **({"reason": reason} if reason else {}),
                     "steps": module.g_step}
    if module.label_prior is not None:  # a conditional model on k-means cluster labels
        metrics["clusters"] = module.num_classes
    if status in ("completed", "stopped early"):
        metrics.update(final)
        protocol = getattr(module.evaluator, "protocol", None)
        if protocol:
            metrics["eval/protocol"] = protocol  # n_real, n_fake, extractor, resize
    metrics["wall_time_s"] = time.perf_counter() - start
    metrics.update(module.last_train)
    try:
        rundir.write_outputs(out, metrics, evaluation)
    except StorageError as exc:
        reason = f"{reason}; {exc}" if reason else str(exc)
        status = "failed" if status == "completed" else status
    return status, reason, metrics


def _save(trainer, ckpt: Path) -> str | None:
    """Save the last checkpoint; None, or why it could not be (the previous one kept)."""
    try:
        trainer.save_checkpoint(ckpt)
    except StorageError as exc:
        return str(exc)
    return None


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when it is empty
    except OSError:
        pass


class TrainingFailed(RuntimeError):
    """A callback or other plug-in raised during training; the run's files were written."""


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving its checkpoint."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from ganzoo import console
    from ganzoo.errors import CheckpointError, ConfigError, NonFiniteLossError

    console.started()
    try:
        entry = cfg.get("entry")  # an experiment's own driver, called with (cfg, train)
        if entry:
            from ganzoo.distributed import GANDDPStrategy, make_strategy

            if isinstance(make_strategy(cfg.trainer), GANDDPStrategy):
                raise ConfigError(f"trainer.strategy: the experiment driver {entry} runs its "
                                  "trainings in one process; drop ddp")
            hydra.utils.get_method(entry)(cfg, train)
        else:
            train(cfg)
    except (ConfigError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _remove_if_empty(Path(cfg.out_dir))  # the directory Hydra made for a refused run
        sys.exit(2)
    except NonFiniteLossError as exc:
        print(f"error: training diverged: {exc}", file=sys.stderr)
        sys.exit(3)
    except (StorageError, TrainingFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        sys.exit(128 + exc.signum)


if __name__ == "__main__":
    from ganzoo.console import one_line_errors
    from ganzoo.ending import without_teardown

    with without_teardown(), one_line_errors():
        main()
