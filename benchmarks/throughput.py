"""Throughput: ganzoo against a competent hand-written loop, each in its own process.

For each row (data x model x loss) and thread count, this script launches, in
alternating order, ``repeats`` pairs of processes:

* ganzoo: ``train.py`` with the row's overrides, exactly as a user runs it (progress
  bar, CSV logger, generator-step checkpoints at their default rates; the image rows
  through ``benchmarks/timing.py``, which serves synthetic CIFAR-shaped data), evaluation
  off (``eval=none``: the hand loop has none), plus the clock callback of
  ``benchmarks/timing.py``;
* the hand loop: ``benchmarks/hand_loop.py`` with the same overrides, a plain-PyTorch
  process that never imports Lightning (see its docstring: the same G, D, data, batch,
  Adam with ``foreach=True``, k, loss and learning-rate decay, the idle network frozen,
  ``loss.item()`` every 50 steps).

Image layout: ganzoo runs its conv nets in NHWC on CPU and CUDA (``model.channels_last``'s
default); the hand loop uses NHWC on CUDA, as GPU code does, and on CPU the NCHW a plain
loop gets unless ``--hand-nhwc`` (then the layouts match and the ratio shows the rest).

Both run the same generator steps; the first ``warmup`` are excluded from the timed
window. Per row it reports the medians over the pairs of: generator steps/s in the
window, the ratio ganzoo / hand of each pair (median, min-max), each process's whole wall
time, its launch -> end of first generator step, and its peak resident set size
(``ru_maxrss`` of the finished process). ``--whole-run`` adds the default job itself:
``train.py`` with no overrides (4,000 steps, evaluations, checkpoints, samples) against
the hand loop doing the same steps and the same final evaluation (``hand_loop.py
--job``).

Children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed), after one
untimed launch of each, as on a user's machine after the first run.

    uv run python benchmarks/throughput.py                        # every CPU row, 1 and 2 threads
    uv run python benchmarks/throughput.py --rows ring_ns --threads 1 --repeats 5
    uv run python benchmarks/throughput.py --whole-run --rows ''  # the default job only
    uv run python benchmarks/throughput.py --device cuda --precision bf16-mixed --compile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# name: (label, overrides, image data through timing.py, CPU (warmup, steps), GPU (...))
ROWS = {
    "ring_ns": ("ring + MLP, non-saturating", ["data=ring", "model=mlp", "loss=nonsaturating"],
                False, (100, 1500), (200, 4000)),
    "ring_gp": ("ring + MLP, WGAN-GP (k=5)", ["data=ring", "model=mlp", "loss=wgan_gp"],
                False, (20, 300), (100, 1500)),
    "digits_ns": ("digits 16x16 + DCGAN unconditional, non-saturating",
                  ["data=digits", "model.conditional=false", "loss=nonsaturating"],
                  False, (5, 100), (50, 1000)),
    "dcgan_ns": ("synthetic 32x32 + DCGAN, non-saturating",
                 ["data=cifar10", "model=dcgan", "loss=nonsaturating"], True, (2, 20),
                 (50, 500)),
    "dcgan_gp": ("synthetic 32x32 + DCGAN (layer-norm critic), WGAN-GP (k=5)",
                 ["data=cifar10", "model=dcgan", "loss=wgan_gp",
                  "model.discriminator.norm=layer"], True, (1, 4), (20, 200)),
    "resnet_ns": ("synthetic 32x32 + ResNet, non-saturating",
                  ["data=cifar10", "model=resnet", "loss=nonsaturating"], True, (1, 3),
                  (20, 300)),
    "resnet_gp": ("synthetic 32x32 + ResNet, WGAN-GP (k=5)",
                  ["data=cifar10", "model=resnet", "loss=wgan_gp"], True, (1, 2), (10, 100)),
}
CPU_ROWS = "ring_ns,ring_gp,digits_ns,dcgan_ns,dcgan_gp"


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def launch(cmd: list[str], env: dict, result: Path | None) -> dict:
    """Run one process; its JSON result plus wall time, launch -> first step, peak RSS."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
        wall = time.time() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    data = json.loads(result.read_text() if result else stdout.strip().splitlines()[-1])
    data["wall_s"] = wall
    data["first_step_s"] = data["first_step"] - start
    data["rss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    return data


def ganzoo_cmd(row, threads: int, warmup: int, steps: int, out: Path, result: Path, args
               ) -> list[str]:
    _, overrides, synthetic, _, _ = ROWS[row]
    entry = str(ROOT / "benchmarks" / "timing.py") if synthetic else str(ROOT / "train.py")
    return [PY, entry, *overrides, *device_overrides(args), f"steps={warmup + steps}",
            f"threads={threads}", "eval=none", f"out_dir={out}",
            "+callbacks.clock._target_=benchmarks.timing.StepClock",
            f"+callbacks.clock.path={result}", f"+callbacks.clock.warmup={warmup}"]


def hand_cmd(row, threads: int, warmup: int, steps: int, args) -> list[str]:
    extra = ["--device", args.device, "--precision", args.precision]
    if args.compile:
        extra.append("--compile")
    if args.hand_nhwc:
        extra.append("--nhwc")
    return [PY, str(ROOT / "benchmarks" / "hand_loop.py"), "--threads", str(threads),
            "--steps", str(warmup + steps), "--warmup", str(warmup), *extra, *ROWS[row][1]]


def device_overrides(args) -> list[str]:
    out = [f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
           f"trainer.precision={args.precision}"]
    return out + (["model.compile=true"] if args.compile else [])


@dataclass
class Result:
    label: str
    threads: int
    warmup: int
    steps: int
    batch: int = 256
    ganzoo: list[dict] = field(default_factory=list)
    hand: list[dict] = field(default_factory=list)

    def median(self, who: str, key: str) -> float:
        values = [r[key] for r in getattr(self, who) if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    @property
    def ratios(self) -> list[float]:
        return [g["steps_per_s"] / h["steps_per_s"]
                for g, h in zip(self.ganzoo, self.hand, strict=True)]


def run_pairs(res: Result, reps: range, commands, env: dict) -> None:
    """For each repeat, the ganzoo and the hand process in alternating order;
    ``commands(who, rep, tmp)`` gives a process's command line and its result file (None:
    its last stdout line). Repeats below 0 are untimed launches, not kept."""
    with tempfile.TemporaryDirectory() as tmp:
        for rep in reps:
            for who in (["ganzoo", "hand"] if rep % 2 == 0 else ["hand", "ganzoo"]):
                cmd, result = commands(who, rep, Path(tmp))
                r = launch(cmd, env, result)
                if rep >= 0:
                    getattr(res, who).append(r)


def measure_row(row: str, threads: int, args) -> Result:
    label, _, _, cpu, gpu = ROWS[row]
    warmup, steps = gpu if args.device == "cuda" else cpu
    warmup = args.warmup if args.warmup is not None else warmup
    steps = args.steps or steps
    res = Result(label, threads, warmup, steps, 256 if "data=ring" in ROWS[row][1] else 64)

    def commands(who: str, rep: int, tmp: Path) -> tuple[list[str], Path | None]:
        w, s = (1, 2) if rep < 0 else (warmup, steps)
        if who == "hand":
            return hand_cmd(row, threads, w, s, args), None
        result = tmp / f"clock{rep}.json"
        return ganzoo_cmd(row, threads, w, s, tmp / f"run{rep}", result, args), result

    run_pairs(res, range(-1 if args.prime else 0, args.repeats), commands, child_env(threads))
    print(f"{row} x {threads} thread(s): ratios "
          + "/".join(f"{x:.2f}" for x in res.ratios), file=sys.stderr, flush=True)
    return res


def measure_whole_run(threads: int, args) -> Result:
    """The default job: ``train.py`` as is against ``hand_loop.py --job``."""
    res = Result("the default run (ring, 4000 steps, evaluations, checkpoints)", threads, 0,
                 4000)

    def commands(who: str, rep: int, tmp: Path) -> tuple[list[str], Path | None]:
        out = tmp / f"{who}{rep}"
        if who == "hand":
            return [PY, str(ROOT / "benchmarks" / "hand_loop.py"), "--threads", str(threads),
                    "--job", "--out", str(out)], None
        result = tmp / f"clock{rep}.json"
        return [PY, str(ROOT / "train.py"), f"out_dir={out}", f"threads={threads}",
                "+callbacks.clock._target_=benchmarks.timing.StepClock",
                f"+callbacks.clock.path={result}"], result

    run_pairs(res, range(args.repeats), commands, child_env(threads))
    print("whole run: ganzoo " + "/".join(f"{r['wall_s']:.1f}" for r in res.ganzoo)
          + " s, hand " + "/".join(f"{r['wall_s']:.1f}" for r in res.hand) + " s",
          file=sys.stderr, flush=True)
    return res


def table(results: list[Result], args, seconds: float) -> str:
    hand_layout = "NHWC" if args.hand_nhwc or args.device == "cuda" else "NCHW"
    lines = [f"Machine: {machine(args)}; torch and lightning as locked in uv.lock; precision "
             f"{args.precision}{', torch.compile' if args.compile else ''}; image layout: "
             f"ganzoo NHWC, hand loop {hand_layout}; {args.repeats} "
             f"interleaved pairs of processes per row, medians; {seconds:.0f} s in all.", "",
             "| row | threads | G steps (warm-up) | ganzoo G steps/s | hand G steps/s "
             "| ratio ganzoo/hand, median (min-max) | whole process s, ganzoo / hand "
             "| launch to first step s, ganzoo / hand | peak RSS MiB, ganzoo / hand |"
             + (" peak GPU MiB, ganzoo / hand |" if args.device == "cuda" else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if args.device == "cuda" else "")]
    for r in results:
        rate = "- | - | -"  # the whole run: no timed window
        if r.ganzoo[0].get("steps_per_s"):
            images = r.median("ganzoo", "steps_per_s") * r.batch
            img = "" if r.batch == 256 else f" ({images:.0f} img/s)"
            rate = (f"{r.median('ganzoo', 'steps_per_s'):.3g}{img} | "
                    f"{r.median('hand', 'steps_per_s'):.3g} | {statistics.median(r.ratios):.2f} "
                    f"({min(r.ratios):.2f}-{max(r.ratios):.2f})")
        line = (f"| {r.label} | {r.threads} | {r.steps} ({r.warmup}) | {rate} "
                f"| {r.median('ganzoo', 'wall_s'):.1f} / {r.median('hand', 'wall_s'):.1f} "
                f"| {r.median('ganzoo', 'first_step_s'):.2f} / "
                f"{r.median('hand', 'first_step_s'):.2f} "
                f"| {r.median('ganzoo', 'rss_mib'):.0f} / {r.median('hand', 'rss_mib'):.0f} |")
        if args.device == "cuda":
            line += (f" {r.median('ganzoo', 'peak_gpu_mib'):.0f} / "
                     f"{r.median('hand', 'peak_gpu_mib'):.0f} |")
        lines.append(line)
    return "\n".join(lines)


def machine(args) -> str:
    if args.device == "cuda":
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else "CUDA GPU"
    name = platform.processor() or "CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=None, help=f"comma-separated, from {', '.join(ROWS)}"
                        f" (default: {CPU_ROWS} on CPU; dcgan and resnet on CUDA)")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved pairs per row")
    parser.add_argument("--steps", type=int, help="timed generator steps (all rows)")
    parser.add_argument("--warmup", type=int, help="untimed generator steps (all rows)")
    parser.add_argument("--whole-run", action="store_true", help="also the default job")
    parser.add_argument("--no-prime", dest="prime", action="store_false",
                        help="skip each row's untimed first pair of launches")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile G and D")
    parser.add_argument("--hand-nhwc", action="store_true",
                        help="the hand loop's convolutions in NHWC on CPU too (ganzoo's "
                             "default layout; on CUDA both always use it)")
    args = parser.parse_args()
    default = CPU_ROWS if args.device == "cpu" else "dcgan_ns,dcgan_gp,resnet_ns,resnet_gp"
    rows = [r for r in (default if args.rows is None else args.rows).split(",") if r]
    for r in rows:
        if r not in ROWS:
            parser.error(f"--rows: unknown row {r!r}; choose from {', '.join(ROWS)}")
    threads = [int(t) for t in args.threads.split(",")]

    start = time.time()
    results = []
    for r in rows:
        for t in threads:
            results.append(measure_row(r, t, args))
            print(table(results, args, time.time() - start), file=sys.stderr)  # so far
    if args.whole_run:
        results += [measure_whole_run(t, args) for t in threads[:1]]
    print(table(results, args, time.time() - start))


if __name__ == "__main__":
    main()
