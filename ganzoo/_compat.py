"""Compatibility between the pinned-range versions of torch and Lightning.

torch >= 2.9 deprecates constructing ``torch.utils._pytree.LeafSpec()`` in favour of
``treespec_leaf()`` (which returns the same leaf spec), but Lightning's
``CombinedLoader`` still calls the constructor, so every ``trainer.fit`` printed a
FutureWarning. Pointing Lightning's reference at the factory removes the cause.
"""

from __future__ import annotations


def patch_lightning_pytree() -> None:
    import torch.utils._pytree as pytree

    factory = getattr(pytree, "treespec_leaf", None)
    if factory is None:  # older torch: LeafSpec() is not deprecated there
        return
    import lightning.pytorch.utilities._pytree as lightning_pytree

    if getattr(lightning_pytree, "LeafSpec", None) is pytree.LeafSpec:
        lightning_pytree.LeafSpec = factory
