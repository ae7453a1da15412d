"""Compatibility between the pinned-range versions of torch and Lightning.

torch >= 2.9 deprecates constructing ``torch.utils._pytree.LeafSpec()`` in favour of
``treespec_leaf()`` (which returns the same leaf spec), but Lightning's
``CombinedLoader`` still calls the constructor, so every ``trainer.fit`` printed a
FutureWarning. Pointing Lightning's reference at the factory removes the cause.
"""

from __future__ import annotations

import ctypes
import os


def patch_lightning_pytree() -> None:
    import torch.utils._pytree as pytree

    factory = getattr(pytree, "treespec_leaf", None)
    if factory is None:  # older torch: LeafSpec() is not deprecated there
        return
    import lightning.pytorch.utilities._pytree as lightning_pytree

    if getattr(lightning_pytree, "LeafSpec", None) is pytree.LeafSpec:
        lightning_pytree.LeafSpec = factory


def skip_nvml_check_without_nvml() -> None:
    """Lightning's fabric sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported, so that
    ``torch.cuda.is_available()`` asks NVML instead of initialising CUDA (which would
    poison forked workers). On a machine without NVML (no NVIDIA driver) every such call
    tries to load libnvidia-ml, fails and falls back to the CUDA runtime's count, the
    answer it gives without the variable: there the variable changes nothing but the
    cost, and torch's optimisers call ``is_available()`` in every ``step()``. ganzoo
    removes it there; with NVML present it stays as Lightning set it."""
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


# Lightning's private names that ganzoo uses, in one place. Checked against lightning
# 2.4 - 2.6 (pyproject.toml bounds it below 2.7); a newer Lightning that moves one breaks
# here, at import, rather than somewhere in a run.
from lightning.fabric.utilities.distributed import (  # noqa: E402
    _set_num_threads_if_needed as set_num_threads_if_needed,
)
from lightning.fabric.utilities.seed import (  # noqa: E402
    _collect_rng_states as collect_rng_states,
)
from lightning.fabric.utilities.seed import _set_rng_states as set_rng_states  # noqa: E402

# ModelCheckpoint's protected methods that GeneratorStepCheckpoint overrides or calls to
# save by generator step; their signatures are the same across the range above.
from lightning.pytorch.callbacks import ModelCheckpoint as _ModelCheckpoint  # noqa: E402
from lightning.pytorch.overrides.distributed import (  # noqa: E402
    _sync_module_states as sync_module_states,
)
from lightning.pytorch.strategies.launchers.subprocess_script import (  # noqa: E402
    _SubprocessScriptLauncher as SubprocessScriptLauncher,
)

CHECKPOINT_METHODS = ("_monitor_candidates", "_should_skip_saving_checkpoint",
                      "_save_topk_checkpoint", "_save_last_checkpoint")
_moved = [name for name in CHECKPOINT_METHODS if not hasattr(_ModelCheckpoint, name)]
if _moved:
    raise ImportError(f"this Lightning's ModelCheckpoint lacks {', '.join(_moved)}, which "
                      "ganzoo's GeneratorStepCheckpoint uses; install lightning<2.7")

skip_nvml_check_without_nvml()  # Lightning (imported above) has set it by now

__all__ = ["CHECKPOINT_METHODS", "SubprocessScriptLauncher", "collect_rng_states",
           "patch_lightning_pytree",
           "set_num_threads_if_needed", "set_rng_states", "sync_module_states"]

