"""The clock a benchmarked ``train.py`` process carries: a Lightning callback, added with

    +callbacks.clock._target_=benchmarks.timing.StepClock +callbacks.clock.path=<file>
    +callbacks.clock.warmup=<steps>

The callback writes one JSON object at the end of training, in the form
``benchmarks/hand_loop.py`` prints: the wall time (``time.time()``) at the end of the
first generator step, the generator steps/s (wall and CPU time) between the end of step
``warmup`` and the last step, the threads and, on CUDA, the peak GPU memory. Run as a
script, this file is train.py with ``data=cifar10`` served by random uint8 images of
CIFAR-10's shape (``synthetic_cifar``), nothing read from disk.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch


class StepClock(L.Callback):
    # It reads the clock at the end of generator step 1 (the first block holds one step),
    # at step `warmup` and at the last step: blocks of steps (ganzoo.updates) end there.
    block_aware = True
    every_key = "callbacks.clock.warmup"

    def __init__(self, path: str, warmup: int = 0) -> None:
        self.path, self.warmup = Path(path), warmup
        self.every = warmup
        self.first = self.t0 = self.t1 = None
        self.g0 = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.generator_updated:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        now, cpu = time.perf_counter(), time.process_time()
        if self.first is None:
            self.first = time.time()
        if pl_module.g_step == self.warmup:
            self.t0, self.c0 = now, cpu
        self.t1, self.c1, self.g1 = now, cpu, pl_module.g_step

    def on_train_end(self, trainer, pl_module) -> None:
        timed = self.g1 - self.warmup
        ok = self.t0 is not None and timed > 0
        self.path.write_text(json.dumps({
            "threads": torch.get_num_threads(), "first_step": self.first,
            "steps_per_s": timed / (self.t1 - self.t0) if ok else None,
            "steps_per_cpu_s": timed / (self.c1 - self.c0) if ok else None,
            "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20
                             if pl_module.device.type == "cuda" else None)}))


def synthetic_cifar(name, root, download):
    """Random uint8 images in CIFAR-10's training-set shape (seeded as the hand loop's)."""
    gen = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8, generator=gen),
            torch.randint(0, 10, (50_000,), generator=gen))


if __name__ == "__main__":
    # python benchmarks/timing.py <train.py overrides>: train.py with data=cifar10 served
    # by synthetic_cifar (nothing read from disk), as benchmarks/throughput.py runs it.
    import runpy
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    import ganzoo.data.images

    ganzoo.data.images._cifar = synthetic_cifar
    sys.argv = [str(root / "train.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
