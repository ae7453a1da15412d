"""Checks a composed config before any training starts.

Every problem is one line naming the key, raised as ConfigError; ``train.py`` prints
it and exits with status 2.
"""

from __future__ import annotations

from omegaconf import DictConfig


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def _get(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node[part]
    return node


def _check_int(cfg: DictConfig, key: str, minimum: int) -> None:
    value = _get(cfg, key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value}")


def _check_pack(cfg: DictConfig) -> None:
    """model.pack (PacGAN): the critic judges packs of that many samples of one batch."""
    _check_int(cfg, "model.pack", 1)
    pack = _get(cfg, "model.pack")
    if pack is None or pack == 1:
        return
    if _get(cfg, "model.conditional"):
        raise ConfigError(f"model.pack={pack}: packing is not available for a class-conditional "
                          "model (model.conditional=true)")
    batch = _get(cfg, "data.batch_size")
    if isinstance(batch, int) and batch % pack:
        raise ConfigError(f"model.pack={pack} must divide the batch size, data.batch_size="
                          f"{batch}: the critic judges packs of {pack} samples")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that cannot work."""
    _check_int(cfg, "steps", 1)
    _check_int(cfg, "n_critic", 1)
    if _get(cfg, "r1_gamma") is not None or _get(cfg, "r1_every") is not None:
        raise ConfigError("r1_gamma and r1_every are replaced by the penalty group: use "
                          "penalty=r1 penalty.weight=GAMMA penalty.every=N")
    _check_int(cfg, "log_every", 1)
    _check_int(cfg, "eval_every", 0)
    _check_int(cfg, "ckpt_every", 1)
    _check_int(cfg, "seed", 0)
    _check_int(cfg, "data.batch_size", 1)
    _check_int(cfg, "data.clusters", 2)
    _check_int(cfg, "model.latent_dim", 1)
    _check_pack(cfg)
    for player in ("g", "d"):
        lr = _get(cfg, f"optim.{player}.lr")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                               or not lr > 0):
            raise ConfigError(f"optim.{player}.lr must be a positive number, got {lr!r}")
    ema_decay = _get(cfg, "ema.decay")
    if ema_decay is not None and (isinstance(ema_decay, bool)
                                  or not isinstance(ema_decay, (int, float))
                                  or not 0 < ema_decay < 1):
        raise ConfigError(f"ema.decay must be a number in (0, 1) or null, got {ema_decay!r}")
    _check_int(cfg, "ema.start", 0)
    decay = _get(cfg, "lr_decay")
    if decay is not None and decay not in ("none", "linear"):
        raise ConfigError(f"lr_decay must be 'none' or 'linear', got {decay!r}")
    nonfinite = _get(cfg, "nonfinite")
    if nonfinite is not None and nonfinite not in ("stop", "skip"):
        raise ConfigError(f"nonfinite must be 'stop' or 'skip', got {nonfinite!r}")
    divergence = _get(cfg, "loss.divergence")
    if divergence is not None:
        from ganzoo.losses import F_DIVERGENCES

        if divergence not in F_DIVERGENCES:
            raise ConfigError(f"loss.divergence: unknown f-divergence {divergence!r}; "
                              f"choose one of {', '.join(F_DIVERGENCES)}")
