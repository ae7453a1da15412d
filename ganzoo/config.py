"""Checks a composed config before any training starts.

Every problem is one line naming the key, raised as ConfigError; ``train.py`` prints
it and exits with status 2. Each key is checked once: a value a constructor receives
(the loss, the penalty, the GAN module, a datamodule) is checked by that constructor,
whose message names the key; ``validate`` checks the keys ``train.py`` itself reads
(the run length and intervals, the seed), values handed to torch's optimisers, and
combinations of keys no single constructor sees.
"""

from __future__ import annotations

from omegaconf import DictConfig

from ganzoo.errors import ConfigError  # noqa: F401  (defined without torch)


def _get(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node[part]
    return node


def is_number(value) -> bool:
    """An int or float setting (a YAML true/false is a bool, which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_int(key: str, value, minimum: int) -> int:
    """``value`` as the integer >= minimum that config key ``key`` must be."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value}")
    return value


def check_module_settings(latent_dim, n_critic, log_every, lr_decay, total_steps, ema_decay,
                          ema_start, prior=None, block_steps="auto") -> None:
    """The GAN module's own settings (its constructor calls this), named by their keys."""
    require_int("model.latent_dim", latent_dim, 1)
    check_block_value(block_steps)
    if hasattr(prior, "check"):  # a latent prior that needs enough dimensions
        prior.check(latent_dim)
    require_int("n_critic", n_critic, 1)
    require_int("log_every", log_every, 1)
    require_int("ema.start", ema_start, 0)
    if lr_decay not in ("none", "linear"):
        raise ConfigError(f"lr_decay must be 'none' or 'linear', got {lr_decay!r}")
    if lr_decay == "linear" and not total_steps:
        raise ConfigError("lr_decay=linear needs the run length (total_steps)")
    if ema_decay is not None and not (is_number(ema_decay) and 0 < ema_decay < 1):
        raise ConfigError(f"ema.decay must be a number in (0, 1) or null, got {ema_decay!r}")


def check_topk(keep, warmup, loss) -> None:
    """topk.keep (the fraction of the generator's fakes its loss keeps, top-k training)
    and topk.warmup (generator steps over which it falls there from 1)."""
    if keep is None:
        return
    if not (is_number(keep) and 0 < keep <= 1):
        raise ConfigError(f"topk.keep must be a number in (0, 1] or null, got {keep!r}")
    require_int("topk.warmup", warmup, 0)
    if getattr(loss, "needs_real_logits", False):
        raise ConfigError(f"topk.keep={keep}: top-k training drops fakes from the generator's "
                          f"loss, which {type(loss).__name__} pairs with real samples")


def _check_int(cfg: DictConfig, key: str, minimum: int) -> None:
    value = _get(cfg, key)
    if value is not None:
        require_int(key, value, minimum)


def _check_pack(cfg: DictConfig) -> None:
    """model.pack (PacGAN): the critic judges packs of that many samples of one batch.
    Checked here rather than by a constructor: the critic's input shape is computed from
    it (the ganzoo.packed resolver) before any constructor runs."""
    _check_int(cfg, "model.pack", 1)
    pack = _get(cfg, "model.pack")
    if not isinstance(pack, int) or pack <= 1:
        return
    if _get(cfg, "model.conditional"):
        raise ConfigError(f"model.pack={pack}: packing is not available for a class-conditional "
                          "model (model.conditional=true)")
    batch = _get(cfg, "data.batch_size")
    if isinstance(batch, int) and batch % pack:
        raise ConfigError(f"model.pack={pack} must divide the batch size, data.batch_size="
                          f"{batch}: the critic judges packs of {pack} samples")


def _check_augment(cfg: DictConfig) -> None:
    """augment (ganzoo.augment) transforms images; checked here, before the data is read:
    the augmentation's constructor does not see the data's shape."""
    augment, shape = _get(cfg, "augment"), _get(cfg, "data.shape")
    if augment is not None and shape is not None and len(shape) != 3:
        target = str(augment.get("_target_", "")).rpartition(".")[2] or "augment"
        raise ConfigError(f"augment: {target} transforms images (channels, height, width), "
                          f"data.shape is {list(shape)}; use augment=none")


def check_block_value(block_steps) -> None:
    if block_steps != "auto" and (isinstance(block_steps, bool) or not isinstance(
            block_steps, int) or block_steps < 1):
        raise ConfigError(f"block_steps must be auto or an integer >= 1, got {block_steps!r}")


def check_block_steps(requested: int, intervals: list[tuple[str, int]]) -> None:
    """Refuse a block size (``ganzoo.updates``) that would end a block past a generator
    step something is due on (``intervals``: each key and its value)."""
    for key, every in intervals:
        if isinstance(every, int) and every > 0 and every % requested:
            raise ConfigError(f"block_steps={requested} must divide {key}={every}: a block "
                              f"ends on every step a figure, evaluation or checkpoint is due")


def _check_block_steps(cfg: DictConfig) -> None:
    """block_steps against the intervals train.py sets (the module checks the callbacks'
    too, once the trainer exists): a refusal before the run directory is made."""
    requested = _get(cfg, "block_steps")  # its value: checked by the GAN module
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 1:
        check_block_steps(requested, [(key, _get(cfg, key)) for key in (
            "log_every", "steps", "eval_every", "ckpt_every")])


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that cannot work."""
    _check_int(cfg, "steps", 1)
    if _get(cfg, "r1_gamma") is not None or _get(cfg, "r1_every") is not None:
        raise ConfigError("r1_gamma and r1_every are replaced by the penalty group: use "
                          "penalty=r1 penalty.weight=GAMMA penalty.every=N")
    _check_int(cfg, "eval_every", 0)
    _check_int(cfg, "ckpt_every", 1)
    _check_int(cfg, "seed", 0)
    threads = _get(cfg, "threads")
    if threads != "auto":
        _check_int(cfg, "threads", 1)
    _check_pack(cfg)
    _check_augment(cfg)
    _check_block_steps(cfg)
    for player in ("g", "d"):  # torch.optim reads them only once training has started
        lr = _get(cfg, f"optim.{player}.lr")
        if lr is not None and not (is_number(lr) and lr > 0):
            raise ConfigError(f"optim.{player}.lr must be a positive number, got {lr!r}")
