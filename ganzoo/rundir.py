"""A run's directory: what may be written there and when, and what is written at the end.

A new run does not write over a trained one; ``.hydra/`` is written once a run is
accepted; metrics.json and samples.png are written atomically; the summary is the few
lines a person reads at the end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ganzoo.config import ConfigError


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
        rows.append(("modes covered", f"{metrics['eval/modes']:.0f} / {n_modes}"))
        if "eval/hq" in metrics:
            rows.append(("high quality", f"{metrics['eval/hq']:.1f} %"))
        if "eval/confident" in metrics:  # stacked digits: channels read with confidence
            rows.append(("confident", f"{metrics['eval/confident']:.1f} % of channels"))
        rows.append(("reverse KL", f"{metrics['eval/reverse_kl']:.4f}"))
        if "eval/class_kl" in metrics:  # stacked digits: its class-share part
            rows.append(("class-share KL", f"{metrics['eval/class_kl']:.4f}"))
    if "eval/fid" in metrics:
        rows.append(("FID", f"{metrics['eval/fid']:.2f}"))
    if "eval/kid" in metrics:
        rows.append(("KID", f"{metrics['eval/kid']:.4f} ± {metrics['eval/kid_std']:.4f}"))
    if "eval/is" in metrics:
        rows.append(("IS", f"{metrics['eval/is']:.2f} ± {metrics['eval/is_std']:.2f}"))
    protocol = metrics.get("eval/protocol")
    if protocol and "classifier" in protocol:  # eval=stacked
        rows.append(("measured on", f"{protocol['n_fake']} generated samples, "
                                    f"{protocol['classifier']}"))
    elif protocol:
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
