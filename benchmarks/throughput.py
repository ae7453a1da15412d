"""Throughput: ganzoo's training against the GAN loop people write by hand.

In one process, for each row (model x loss), this script times

* ganzoo: ``train(cfg)`` from ``train.py`` on the Hydra config a user gets with the same
  overrides on the command line (progress bar, CSV logger, checkpoint and evaluation
  callbacks at their default rates), and
* the hand-written loop: the obvious PyTorch loop over the same generator and critic
  (built from the same config), the same batch size, Adam with the same hyper-parameters,
  the same in-memory data, linear learning-rate decay and generator EMA where the config
  has them. Non-saturating: ``fake = G(z)``; D on real, D on ``fake.detach()``, step; G
  on D(fake) (the fake batch reused, as in PyTorch's DCGAN tutorial), step. WGAN-GP
  (Gulrajani et al. 2017, Algorithm 1): 5 x (fake under no_grad, D on real and fake,
  gradient penalty, step), then G on fresh noise, step.

Both run the same number of generator steps after the same warm-up (excluded), repeated
in alternating order, and the medians are reported: generator steps/s, the ratio
ganzoo / hand, and peak memory. On CUDA, memory is ``torch.cuda.max_memory_allocated``
above what was allocated before the run; on CPU it is the process's peak resident set
size (VmHWM, reset through /proc/self/clear_refs) above its resident size before the
run. The logging cost is ganzoo at its default rates against ganzoo with training
figures, logger and progress bar off, on the ring rows.

    uv run python benchmarks/throughput.py                      # CPU, about 4-5 minutes
    uv run python benchmarks/throughput.py --rows ring --steps 200 --repeats 5
    uv run python benchmarks/throughput.py --device cuda --data cifar10
    uv run python benchmarks/throughput.py --device cuda --precision bf16-mixed --compile

Image rows use 32x32 RGB data: ``--data synthetic`` (default; random uint8 images in
CIFAR-10's shape held by ganzoo's own image datamodule, so nothing is downloaded) or
``--data cifar10`` (the real set under ``$GANZOO_DATA``, else ``./data``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

# model rows: (label, Hydra overrides); batch size is the data config's (256 ring, 64 images)
MODELS = {
    "ring": ("ring + mlp, batch 256", ["data=ring", "model=mlp"]),
    "dcgan": ("dcgan 32x32, batch 64", ["data=cifar10", "model=dcgan"]),
    "resnet": ("resnet 32x32, batch 64", ["data=cifar10", "model=resnet"]),
}
LOSSES = {"nonsaturating": [], "wgan_gp": []}
# A critic with batch norm cannot take a gradient penalty: dcgan's WGAN-GP critic uses
# layer norm (Gulrajani et al. 2017, Sec. 4), as ganzoo requires.
EXTRA = {("dcgan", "wgan_gp"): ["model.discriminator.norm=layer"]}
# (warm-up, timed generator steps, repeats) per row on CPU, chosen so the default run
# fits in about 5 minutes on 2 cores: a CPU ResNet step takes seconds (a WGAN-GP one, with
# 5 critic steps and double backward, about half a minute), so those rows run once, and
# resnet + wgan_gp without warm-up (CPU has no kernel selection or lazy compilation to
# warm up; its first step pays only the optimiser state allocation). --steps, --warmup
# and --repeats override them.
CPU_STEPS = {
    ("ring", "nonsaturating"): (20, 400, 3), ("ring", "wgan_gp"): (5, 60, 3),
    ("dcgan", "nonsaturating"): (1, 5, 3), ("dcgan", "wgan_gp"): (1, 2, 3),
    ("resnet", "nonsaturating"): (1, 1, 1), ("resnet", "wgan_gp"): (0, 1, 1),
}
GPU_STEPS = {
    ("ring", "nonsaturating"): (100, 2000, 3), ("ring", "wgan_gp"): (50, 500, 3),
    ("dcgan", "nonsaturating"): (50, 500, 3), ("dcgan", "wgan_gp"): (20, 200, 3),
    ("resnet", "nonsaturating"): (20, 200, 3), ("resnet", "wgan_gp"): (10, 100, 3),
}


# --- memory ---------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory from the start of a block to its ``snapshot()`` (the end of the timed
    training steps, before any final evaluation), above the memory in use at its start."""

    current: PeakMemory | None = None

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = float("nan")

    def __enter__(self) -> PeakMemory:
        PeakMemory.current = self
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back to the OS
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            self.start = _proc_status("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        PeakMemory.current = None

    def snapshot(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self.start) / 2**20
        else:
            self.mib = (_proc_status("VmHWM") - self.start) / 2**20


def _proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


# --- ganzoo ---------------------------------------------------------------------------------


class StepTimer(L.Callback):
    """Wall-clock time between the end of generator step ``warmup`` and the last one."""

    last: StepTimer | None = None

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.t0 = self.t1 = None
        StepTimer.last = self

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        g = pl_module.g_step
        if g == self.warmup and self.t0 is None:
            self.t0 = _now(pl_module.device)
        if g == pl_module.total_steps and self.t1 is None:
            self.t1 = _now(pl_module.device)
            PeakMemory.current.snapshot()


CLOCK = time.perf_counter  # --clock cpu: time.process_time (CPU time of this process)


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return CLOCK()


def run_ganzoo(cfg: DictConfig, warmup: int, steps: int, quiet_logging: bool = False
               ) -> tuple[float, float]:
    """(generator steps/s, peak MiB) of ``train(cfg)`` over ``steps`` timed steps."""
    from train import train

    cfg = cfg.copy()
    with tempfile.TemporaryDirectory() as out, open_dict(cfg):
        cfg.out_dir = out
        cfg.steps = warmup + steps
        cfg.threads = torch.get_num_threads()  # the hand loop's count, not threads=auto's
        cfg.callbacks = {"timer": {"_target_": f"{__name__}.StepTimer", "warmup": warmup}}
        # Training alone is timed, as in the hand loop: the evaluation at the last step
        # (which runs inside that step's hooks, before this timer's) is off.
        cfg.eval = None
        if quiet_logging:
            cfg.log_every = 10**9
            cfg.logger = None
            cfg.trainer.enable_progress_bar = False
        sink = io.StringIO()  # the final report and the progress bar, kept off the table
        with PeakMemory(_device(cfg)) as mem, contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            train(cfg)
    timer = StepTimer.last
    return steps / (timer.t1 - timer.t0), mem.mib


def _device(cfg: DictConfig) -> torch.device:
    return torch.device("cuda" if cfg.trainer.accelerator == "gpu" else "cpu")


# --- the hand-written loop ------------------------------------------------------------------


def run_hand(cfg: DictConfig, data: torch.Tensor, warmup: int, steps: int,
             compile_: bool = False) -> tuple[float, float]:
    """(generator steps/s, peak MiB) of the obvious PyTorch loop on the same models."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from ganzoo.nets.layers import spectral_normalize

    device = _device(cfg)
    bf16 = str(cfg.trainer.precision).startswith("bf16")
    with PeakMemory(device) as mem:
        torch.manual_seed(cfg.seed)
        G = instantiate(cfg.model.generator).to(device)
        D = instantiate(cfg.model.discriminator)
        if cfg.model.get("spectral_norm", False):
            spectral_normalize(D)
        D = D.to(device)
        ema = None
        if cfg.ema.decay is not None:
            ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema.decay),
                                use_buffers=True)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.g.lr, betas=tuple(cfg.optim.g.betas))
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.d.lr, betas=tuple(cfg.optim.d.betas))
        total = warmup + steps
        scheds = []
        if cfg.lr_decay == "linear":
            scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: max(0.0, 1 - s / total))
                      for o in (opt_g, opt_d)]
        G_, D_ = (torch.compile(G), torch.compile(D)) if compile_ else (G, D)
        wgan_gp = cfg.penalty is not None and cfg.penalty._target_.endswith("GradientPenalty")
        k, n, latent = cfg.n_critic, cfg.data.batch_size, cfg.model.latent_dim
        ones = torch.ones(n, device=device)
        zeros = torch.zeros(n, device=device)

        def amp():
            return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

        for step in range(total):
            if step == warmup:
                t0 = _now(device)
            for _ in range(k):
                real = data[torch.randint(len(data), (n,), device=device)]
                z = torch.randn(n, latent, device=device)
                if wgan_gp:
                    with torch.no_grad(), amp():
                        fake = G_(z)
                    with amp():
                        d_loss = D_(fake).mean() - D_(real).mean()
                    eps = torch.rand(n, *[1] * (real.dim() - 1), device=device)
                    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
                    with amp():
                        out = D(x_hat)
                    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
                    gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
                    d_loss = d_loss + cfg.penalty.weight * gp
                else:
                    with amp():
                        fake = G_(z)
                        d_loss = (F.binary_cross_entropy_with_logits(D_(real).float(), ones)
                                  + F.binary_cross_entropy_with_logits(
                                      D_(fake.detach()).float(), zeros))
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            with amp():
                if wgan_gp:
                    g_loss = -D_(G_(torch.randn(n, latent, device=device))).float().mean()
                else:
                    g_loss = F.binary_cross_entropy_with_logits(D_(fake).float(), ones)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            if ema is not None:
                ema.update_parameters(G)
            for sched in scheds:
                sched.step()
        t1 = _now(device)
        mem.snapshot()
        del G, D, G_, D_, ema, opt_g, opt_d
    return steps / (t1 - t0), mem.mib


# --- configs and data -----------------------------------------------------------------------


def make_cfg(model: str, loss: str, args) -> DictConfig:
    GlobalHydra.instance().clear()
    overrides = [*MODELS[model][1], f"loss={loss}", *LOSSES[loss], *EXTRA.get((model, loss), []),
                 f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
                 f"trainer.precision={args.precision}", "out_dir=."]
    if args.compile:
        overrides.append("model.compile=true")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=overrides + args.override)


_IMAGES: dict[str, torch.Tensor] = {}


def use_image_data(kind: str) -> None:
    """Serve CIFAR-10 (or random uint8 images of its shape) from one in-memory copy."""
    import ganzoo.data.images as images

    original = images._cifar

    def cached(name, root, download):
        if name not in _IMAGES:
            if kind == "synthetic":
                gen = torch.Generator().manual_seed(0)
                _IMAGES[name] = (torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8,
                                               generator=gen),
                                 torch.randint(0, 10, (50_000,), generator=gen))
            else:
                _IMAGES[name] = original(name, root, download)
        return _IMAGES[name]

    images._cifar = cached


def hand_data(cfg: DictConfig, device: torch.device) -> torch.Tensor:
    """The same training set ganzoo's datamodule holds, as floats (the obvious form)."""
    dm = instantiate(cfg.data)
    if hasattr(dm, "train_set"):
        return dm.train_set.to(device)
    dm.setup("fit")
    return dm.images.to(device).float().div(127.5).sub(1.0)  # (N, 3, 32, 32) in [-1, 1]


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class Row:
    model: str
    loss: str
    warmup: int
    steps: int
    repeats: int
    ganzoo: list[float] = field(default_factory=list)
    hand: list[float] = field(default_factory=list)
    quiet: list[float] = field(default_factory=list)
    mem_ganzoo: list[float] = field(default_factory=list)
    mem_hand: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [g / h for g, h in zip(self.ganzoo, self.hand, strict=True)]


def measure(row: Row, args, log_cost: bool) -> None:
    cfg = make_cfg(row.model, row.loss, args)
    device = torch.device(args.device)
    data = hand_data(cfg, device) if device.type == "cpu" else None
    for rep in range(row.repeats):
        order = ["ganzoo", "hand"] + (["quiet"] if log_cost else [])
        if rep % 2:
            order.reverse()
        for who in order:
            if who == "hand":
                # on CUDA the device copy is made inside the measured block's run
                d = data if data is not None else hand_data(cfg, device)
                rate, mib = run_hand(cfg, d, row.warmup, row.steps, args.compile)
                del d
                row.hand.append(rate)
                row.mem_hand.append(mib)
            elif who == "ganzoo":
                rate, mib = run_ganzoo(cfg, row.warmup, row.steps)
                row.ganzoo.append(rate)
                row.mem_ganzoo.append(mib)
            else:
                rate, _ = run_ganzoo(cfg, row.warmup, row.steps, quiet_logging=True)
                row.quiet.append(rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="ring,dcgan,resnet",
                        help="comma-separated models (ring, dcgan, resnet) or model/loss")
    parser.add_argument("--losses", default="nonsaturating,wgan_gp")
    parser.add_argument("--steps", type=int, help="timed generator steps per run (all rows)")
    parser.add_argument("--warmup", type=int, help="untimed generator steps per run")
    parser.add_argument("--repeats", type=int, help="alternating A/B repeats (default: 3, "
                        "1 for the CPU resnet rows)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data", default="synthetic", choices=["synthetic", "cifar10"],
                        help="32x32 images for the dcgan/resnet rows")
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile G and D")
    parser.add_argument("--log-cost", default="ring",
                        help="models whose logging cost is measured ('' for none)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="cpu: this process's CPU time (steadier on a busy machine; "
                        "use with --threads 1)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("override", nargs="*", help="extra Hydra overrides for every row")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")

    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    use_image_data(args.data)
    table = CPU_STEPS if args.device == "cpu" else GPU_STEPS
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    losses = [x.strip() for x in args.losses.split(",") if x.strip()]
    rows = []
    for item in wanted:
        model, _, only = item.partition("/")
        if model not in MODELS:
            parser.error(f"--rows: unknown model {model!r}; choose from {', '.join(MODELS)}")
        for loss in [only] if only else losses:
            warmup, steps, repeats = table[(model, loss)]
            rows.append(Row(model, loss, args.warmup if args.warmup is not None else warmup,
                            args.steps or steps, args.repeats or repeats))
    log_models = {m.strip() for m in args.log_cost.split(",") if m.strip()}

    start = time.perf_counter()
    for row in rows:
        t = time.perf_counter()
        measure(row, args, row.model in log_models)
        print(f"{row.model}/{row.loss}: ganzoo {_fmt(row.ganzoo)}, hand {_fmt(row.hand)} "
              f"steps/s ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    print(table_markdown(rows, args, time.perf_counter() - start))


def _fmt(rates: list[float]) -> str:
    return "/".join(f"{r:.3g}" for r in rates)


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def table_markdown(rows: list[Row], args, seconds: float) -> str:
    med = statistics.median
    device = (torch.cuda.get_device_name() if args.device == "cuda"
              else f"{_cpu_name()}, {torch.get_num_threads()} threads")
    mem = "torch.cuda.max_memory_allocated" if args.device == "cuda" else "peak RSS (VmHWM)"
    lines = [
        f"Device: {device}; torch {torch.__version__}, lightning {L.__version__}; "
        f"precision {args.precision}{', torch.compile' if args.compile else ''}; "
        f"images: {args.data}; alternating ganzoo/hand repeats, medians; "
        f"{seconds:.0f} s in all.",
        "",
        "| model | loss | timed G steps (warm-up) x repeats | ganzoo G steps/s "
        "| hand loop G steps/s | ratio: median of repeats (min-max) | ganzoo peak MiB "
        "| hand peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        batch = 256 if r.model == "ring" else 64
        img = "" if r.model == "ring" else f" ({med(r.ganzoo) * batch:.0f} img/s)"
        lines.append(
            f"| {MODELS[r.model][0]} | {r.loss} | {r.steps} ({r.warmup}) x {r.repeats} "
            f"| {med(r.ganzoo):.3g}{img} | {med(r.hand):.3g} | {med(r.ratios):.2f} "
            f"({min(r.ratios):.2f}-{max(r.ratios):.2f}) | {med(r.mem_ganzoo):.0f} "
            f"| {med(r.mem_hand):.0f} |")
    logged = [r for r in rows if r.quiet]
    if logged:
        lines += ["", "Logging cost at the default rates (log_every=50, CSV logger, progress "
                  "bar) against none of them:", "",
                  "| model | loss | ganzoo default G steps/s | without logging | cost |",
                  "|---|---|---|---|---|"]
        for r in logged:
            cost = 1 - med(r.ganzoo) / med(r.quiet)
            lines.append(f"| {MODELS[r.model][0]} | {r.loss} | {med(r.ganzoo):.3g} "
                         f"| {med(r.quiet):.3g} | {100 * cost:.1f}% |")
    lines += ["", f"Memory: {mem} during a run above its value at the start of the run."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
