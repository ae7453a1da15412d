"""Data-parallel training of the alternating GAN loop, without unused-parameter search.

Lightning's ``DDPStrategy`` wraps the whole LightningModule in
``DistributedDataParallel``, which expects every parameter to take a gradient in every
backward. In a GAN's generator step the critic takes none, so the textbook module
fails under DDP unless ``find_unused_parameters=True`` makes DDP walk the graph after
every backward. ``GANDDPStrategy`` keeps Lightning's launching, process group,
checkpointing and rank bookkeeping, but leaves the module unwrapped and synchronises
per backward what was actually trained:

- after every ``manual_backward`` the gradients that backward produced (the network
  being updated; the idle one is frozen, ``ganzoo.updates``) are averaged over the
  ranks in one collective;
- the batch-norm running statistics are averaged once per training iteration, after
  the generator update (``average_running_stats``): they update linearly, so this
  equals averaging after every forward, and no graph still holds them (with k = 1 the
  generator's graph outlives the critic update);
- parameters and buffers are broadcast from rank 0 when training starts.

Each rank draws the *global* batch (``data.batch_size`` x world size) of real data and
noise and keeps its own slice (``shard``), so N ranks train exactly as one process
with N times the per-device batch, up to the order of floating-point sums.

Lightning starts the other ranks of a node by re-running the script. Under Hydra
``HydraLauncher`` re-runs it with the job's own overrides into the job's run
directory (also inside a multirun), with no config or log files of its own; rank 0
alone writes the run's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from ganzoo._compat import collect_rng_states, set_rng_states, sync_module_states
from ganzoo.launcher import HydraLauncher, set_entry_script  # noqa: F401 (train.py's)

# What Lightning's launcher puts into the environment of the process that starts ranks.


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(x: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's equal slice of a global batch (first dimension)."""
    if world_size == 1:
        return x
    n = x.shape[0] // world_size
    return x[rank * n:(rank + 1) * n]


def draw_global(draw: Callable[[int], Tensor | None], n: int) -> Tensor | None:
    """This rank's n of ``draw(n * world size)``: every rank draws the global batch and keeps
    its own slice, so N ranks draw what one process would (None stays None)."""
    rank, world_size = world()
    x = draw(n * world_size)
    return None if x is None else shard(x, rank, world_size)


def _average_(tensors: Sequence[Tensor]) -> None:
    """Average tensors in place over all ranks: one all-reduce per dtype and device."""
    world_size = dist.get_world_size()
    groups: dict[tuple, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = _flatten_dense_tensors(group)
        dist.all_reduce(flat)
        flat.div_(world_size)
        for t, synced in zip(group, _unflatten_dense_tensors(flat, group), strict=True):
            t.copy_(synced)


def _running_stats(module: nn.Module) -> Iterable[Tensor]:
    for m in module.modules():
        # SyncBatchNorm's statistics are already those of the global batch on every rank.
        if (isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
                and not isinstance(m, nn.SyncBatchNorm) and m.running_mean is not None):
            yield from (m.running_mean, m.running_var)


def average_running_stats(module: nn.Module) -> None:
    """Average the batch-norm running statistics over the ranks (a no-op outside a
    process group). Call it where no autograd graph still holds them."""
    if world()[1] == 1:
        return
    stats = list(_running_stats(module))
    if stats:
        _average_(stats)


def sum_over_ranks(t: Tensor) -> Tensor:
    """``t`` summed over the ranks (a copy; ``t`` itself outside a process group)."""
    if world()[1] == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def mean_over_ranks(values: dict[str, Tensor]) -> dict[str, Tensor]:
    """Scalars averaged over ranks (one collective); unchanged outside a process group."""
    _, world_size = world()
    if world_size == 1 or not values:
        return values
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    dist.all_reduce(stacked)
    return dict(zip(values, (stacked / world_size).unbind(), strict=True))


def max_over_ranks(value: int, device: torch.device | None = None) -> int:
    """The largest of an integer over all ranks (unchanged outside a process group)."""
    _, world_size = world()
    if world_size == 1:
        return value
    t = torch.tensor(value, dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def from_rank_zero(figures: dict[str, float], device: torch.device | None = None
                   ) -> dict[str, float]:
    """Rank 0's figures on every rank (unchanged outside a process group)."""
    _, world_size = world()
    if world_size == 1:
        return figures
    box = [figures]
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank if it is true on some rank (a no-op outside a process group)."""
    _, world_size = world()
    if world_size == 1:
        return flag
    t = torch.tensor(float(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class GANDDPStrategy(DDPStrategy):
    """DDP for manual-optimisation GANs: gradients averaged per backward, module unwrapped.

    Takes DDPStrategy's arguments except those that configure the wrapper
    (``find_unused_parameters``, ``static_graph``, communication hooks), which do not
    apply.
    """

    def _configure_launcher(self) -> None:
        self._launcher = HydraLauncher(self.cluster_environment, self.num_processes,
                                       self.num_nodes)

    def setup_distributed(self) -> None:
        # Lightning re-seeds every rank here; each of ours seeded itself before building
        # the networks, and keeping that stream makes N ranks draw what one process would.
        states = collect_rng_states()
        super().setup_distributed()
        set_rng_states(states)

    def configure_ddp(self) -> None:
        # No DistributedDataParallel wrapper: start from rank 0's weights and buffers.
        sync_module_states(self.model)

    def post_backward(self, closure_loss: Tensor) -> None:
        if self.world_size == 1:
            return
        module = self.lightning_module
        grads = [p.grad for p in module.parameters() if p.requires_grad and p.grad is not None]
        if grads:
            _average_(grads)

    def teardown(self) -> None:
        super().teardown()
        # The run's remaining work (final checkpoint, samples, report) happens on rank 0
        # alone; ending the group here also lets the next job of a sweep start a new one.
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def check_trainer(trainer, trainer_cfg) -> None:
    """Refuse, before any process starts, what this torch cannot do distributed."""
    from ganzoo.config import ConfigError

    strategy = trainer.strategy
    if (isinstance(strategy, GANDDPStrategy) and trainer_cfg.get("sync_batchnorm")
            and strategy.root_device.type == "cpu"):
        raise ConfigError("trainer.sync_batchnorm: torch's SyncBatchNorm runs on GPUs only, "
                          "not on CPU; drop it (each rank then normalises by its own batch)")


def make_strategy(trainer_cfg) -> Any:
    """The strategy for ``trainer.strategy``: ``ddp`` (and ``auto`` on several devices)
    means GANDDPStrategy; a config node with ``_target_`` is built by Hydra."""
    from ganzoo.config import ConfigError

    strategy = trainer_cfg.get("strategy", "auto")
    if not isinstance(strategy, str):
        return strategy
    devices, nodes = trainer_cfg.get("devices", 1), trainer_cfg.get("num_nodes", 1)
    single = nodes == 1 and (devices == 1 or (isinstance(devices, Sequence)
                                               and not isinstance(devices, str)
                                               and len(devices) == 1))
    if strategy == "ddp" or (strategy == "auto" and not single):
        return GANDDPStrategy()
    if strategy in ("auto", "single_device"):
        return strategy
    raise ConfigError(f"trainer.strategy: ganzoo trains with 'auto' (one device) or 'ddp' "
                      f"(one process per device, any number of nodes), got {strategy!r}")
