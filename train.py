"""ganzoo's entry point: train one composition of model, data and loss.

    uv run train.py                                   # ring of 8 Gaussians, MLPs, NS-GAN
    uv run train.py loss=wgan_gp data=grid seed=1 steps=5000
    uv run train.py -m loss=minimax,nonsaturating,fgan,wgan_gp seed=0,1,2

``train(cfg)`` is importable and returns the final metrics. A run directory holds
metrics.json, samples.png and checkpoints/last.ckpt.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import ganzoo  # noqa: F401  (registers the config resolvers conf/ uses)

log = logging.getLogger("ganzoo")


def _instantiate(node, what: str, **kwargs):
    """hydra.utils.instantiate with the constructor's own message on failure."""
    from hydra.errors import InstantiationException

    from ganzoo.config import ConfigError

    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"{what}: {cause}") from exc


def _prepare_models(cfg: DictConfig, dm, generator, discriminator, loss) -> None:
    """Spectral norm on D if asked; refuse a G, D, data and loss that cannot work together."""
    from ganzoo.config import ConfigError
    from ganzoo.nets.layers import check_models, spectral_normalize

    if cfg.model.get("spectral_norm", False):
        spectral_normalize(discriminator)
    penalty = f"loss={loss.name}" if loss.uses_gradient_penalty else None
    if cfg.get("r1_gamma", 0):
        penalty = "r1_gamma > 0"
    clusters = getattr(dm, "clusters", None)
    num_classes = getattr(dm, "num_classes", 0) or 0
    labels = ((clusters, f"data.clusters={clusters}") if clusters
              else (num_classes, f"data.num_classes={num_classes}"))
    try:
        check_models(generator, discriminator, dm.shape, penalty, labels)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _discriminator(cfg: DictConfig, dm):
    """The critic; with ``model.pack=m`` (PacGAN) built for packs of m samples and wrapped."""
    pack = int(cfg.model.get("pack", 1) or 1)
    if pack == 1:
        return _instantiate(cfg.model.discriminator, "model.discriminator")
    from ganzoo.nets.pack import Packed, packed_shape

    critic = _instantiate(cfg.model.discriminator, "model.discriminator",
                          data_shape=packed_shape(dm.shape, pack))
    return Packed(critic, pack, dm.shape)


def _json_safe(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def train(cfg: DictConfig) -> dict:
    """Train the GAN that ``cfg`` composes; write the run's outputs; return its metrics."""
    start = time.perf_counter()
    from ganzoo.config import validate

    validate(cfg)
    # Heavy imports only once the config is known to be good.
    import lightning as L

    from ganzoo.callbacks import (
        FinalEvaluation,
        GeneratorStepCheckpoint,
        GeneratorStepProgressBar,
        GracefulInterrupt,
        PeriodicEvaluation,
    )
    from ganzoo.distributed import check_trainer, make_strategy, set_entry_script
    from ganzoo.gan import GAN, NonFiniteLossError

    # Library housekeeping (Lightning's device summary, matplotlib's one-time font cache
    # build) is not news for the user: only their warnings reach the console.
    for name in ("lightning.pytorch", "lightning.fabric", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    dm = _instantiate(cfg.data, "data")
    generator = _instantiate(cfg.model.generator, "model.generator")
    if getattr(dm, "clusters", None) and not getattr(generator, "num_classes", 0):
        dm.clusters = None  # an unconditional generator uses no labels: nothing to cluster
    discriminator = _discriminator(cfg, dm)
    loss = _instantiate(cfg.loss, "loss")
    _prepare_models(cfg, dm, generator, discriminator, loss)
    module = GAN(
        generator, discriminator, loss,
        optimizer_g=_instantiate(cfg.optim.g, "optim.g"),
        optimizer_d=_instantiate(cfg.optim.d, "optim.d"),
        latent_dim=cfg.model.latent_dim, n_critic=cfg.n_critic,
        r1_gamma=cfg.r1_gamma, r1_every=cfg.r1_every,
        ema_decay=cfg.ema.decay, ema_start=cfg.ema.start,
        total_steps=cfg.steps, log_every=cfg.log_every, lr_decay=cfg.lr_decay,
        nonfinite=cfg.nonfinite,
        compile=cfg.model.get("compile", False),
        channels_last=cfg.model.get("channels_last", None),
    )
    module.extra_checkpoint = {
        "generator": OmegaConf.to_container(cfg.model.generator, resolve=True),
        "data": {"name": dm.name, "shape": list(dm.shape)},
    }
    module.evaluator = dm.evaluate
    if hasattr(dm, "real_images"):  # image data: FID, KID, IS (metrics.*)
        from ganzoo.metrics.images import ImageMetrics

        dm.metrics = ImageMetrics.from_config(cfg.get("metrics"), dm)

    resume = None
    if cfg.ckpt_path is not None:
        from ganzoo.checkpoint import check_compatible, read_checkpoint

        resume = Path(cfg.ckpt_path)
        check_compatible(read_checkpoint(resume), module.state_dict(), resume)
    k = cfg.n_critic
    interrupt = GracefulInterrupt()
    checkpoint = GeneratorStepCheckpoint(
        cfg.ckpt_every, dirpath=out / "checkpoints", filename="{step:06d}", save_last=True,
        save_top_k=1)
    loggers = [_instantiate(node, f"logger.{name}") for name, node in (cfg.logger or {}).items()]
    for logger in loggers:  # the resolved config is the run's record (W&B: its run config)
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    title = f"{dm.name} · {cfg.model.name} · {type(loss).__name__}"
    evaluation = PeriodicEvaluation(cfg.eval_every, out_dir=out, title=title)
    ending = FinalEvaluation(evaluation, interrupt)
    extra = [_instantiate(node, f"callbacks.{name}")
             for name, node in (cfg.get("callbacks") or {}).items() if node is not None]
    trainer = _instantiate(
        cfg.trainer, "trainer",
        max_steps=cfg.steps * (k + 1),  # Lightning counts k critic + 1 generator step
        logger=loggers or False,
        # The interrupt check runs last, so a signal that arrives during this batch's
        # other hooks stops training after this batch.
        callbacks=[evaluation, checkpoint, *extra, interrupt, ending]
        + ([GeneratorStepProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []),
        default_root_dir=str(out),
        log_every_n_steps=1,
        strategy=make_strategy(cfg.trainer),  # ddp: ganzoo's GAN-aware DDP
    )
    check_trainer(trainer)
    set_entry_script(__file__)  # what DDP re-runs for the other ranks of this node

    ckpt_dir = out / "checkpoints"
    status, reason = "completed", None
    try:
        # The stop signal and the final evaluation are settled inside fit (FinalEvaluation,
        # at on_train_end), where under DDP every rank still shares the process group.
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    except NonFiniteLossError as exc:
        status, reason = "diverged", str(exc)
    signum, final = ending.signum, ending.figures
    if status == "completed" and not ending.ran:  # a finished run resumed: nothing trained
        final = evaluation.finish(trainer, module)
    if not trainer.is_global_zero:  # DDP: rank 0 alone writes the run's outputs
        return {}
    if status == "diverged":  # keep the last finite checkpoint: write nothing over it
        kept = ckpt_dir / "last.ckpt"
        reason += (f"; the last finite checkpoint is {kept}" if kept.is_file()
                   else "; no checkpoint had been written yet")
        hint = getattr(module.loss, "divergence_hint", None)  # custom losses may lack it
        if hint:
            reason += f"; {hint}"
    else:
        trainer.save_checkpoint(ckpt_dir / "last.ckpt")
        if signum:
            status = "interrupted"
            reason = (f"received {signal.Signals(signum).name} at generator step "
                      f"{module.g_step}; resume with ckpt_path={ckpt_dir / 'last.ckpt'}")

    metrics: dict = {"status": status, **({"reason": reason} if reason else {}),
                     "steps": module.g_step}
    if module.label_prior is not None:  # a conditional model on k-means cluster labels
        metrics["clusters"] = module.num_classes
    if status == "completed":
        metrics.update(final)
        if evaluation.last_picture is not None:  # the picture of the final generator
            shutil.copyfile(evaluation.last_picture, out / "samples.png")
        if getattr(dm, "metrics", None) is not None and dm.metrics.protocol:
            metrics["eval/protocol"] = dm.metrics.protocol  # n_real, n_fake, extractor, resize
    metrics["wall_time_s"] = time.perf_counter() - start
    metrics.update(module.last_train)
    (out / "metrics.json").write_text(
        json.dumps({k: _json_safe(v) for k, v in metrics.items()}, indent=2) + "\n")
    from ganzoo.loggers import close_loggers

    notes = close_loggers(loggers)
    _report(cfg, metrics, out, getattr(dm, "n_modes", None), notes)
    if status == "diverged":
        raise NonFiniteLossError(reason)
    if status == "interrupted":
        raise TrainingInterrupted(signum, reason)
    return metrics


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving its checkpoint."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


def _report(cfg: DictConfig, metrics: dict, out: Path, n_modes: int | None,
            notes: list[str] = ()) -> None:
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
    rows.append(("run directory", str(out)))
    loss = cfg.loss._target_.rsplit(".", 1)[-1].lower()
    if HydraConfig.initialized():
        loss = HydraConfig.get().runtime.choices.get("loss", loss)
    if "divergence" in cfg.loss:
        loss += f" ({cfg.loss.divergence})"
    print(f"\nganzoo · {cfg.data.name} · {cfg.model.name} · {loss} · seed {cfg.seed}")
    for name, value in rows:
        print(f"  {name:<16} {value}")
    for note in notes:
        print(f"  {note}")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from ganzoo.checkpoint import CheckpointError
    from ganzoo.config import ConfigError
    from ganzoo.gan import NonFiniteLossError

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
        sys.exit(2)
    except NonFiniteLossError as exc:
        print(f"error: training diverged: {exc}", file=sys.stderr)
        sys.exit(3)
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        sys.exit(128 + exc.signum)


if __name__ == "__main__":
    main()
