"""Start-up cost: ``train.py --help``, and the default run's time to its first step.

    uv run python benchmarks/startup.py            # 3 repeats each, medians
    uv run python benchmarks/startup.py --repeats 5

Times are wall-clock from launching the process (``uv run``, as a user types it) to
the help text's end, and to the end of the first training step of ``uv run train.py``
(the embedded default: ring, mlp, non-saturating), which is then stopped. Also lists
which heavy optional packages each path has imported by then.

``--floor N`` times N interleaved pairs of bare imports, with bytecode caches on: what the
hand loop of ``benchmarks/hand_loop.py`` has imported by the end of its first step (torch,
Hydra, and torch._dynamo, which its first ``Adam.step`` imports) against the same plus
Lightning. Their difference is what any Lightning program pays before its first step
beyond a plain-PyTorch one: a floor under ganzoo's launch time that ganzoo's own code
cannot lower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "torchvision", "torchmetrics", "wandb", "matplotlib", "sklearn",
         "scipy", "pandas")


class FirstStep(L.Callback):
    """Writes the time and the heavy modules loaded at the end of the first step, then
    stops training."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_step >= 1 and not trainer.should_stop:
            Path(self.path).write_text(json.dumps(
                {"time": time.time(), "modules": [m for m in HEAVY if m in sys.modules]}))
            trainer.should_stop = True


def time_help() -> float:
    start = time.time()
    subprocess.run(["uv", "run", "train.py", "--help"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return time.time() - start


def help_imports() -> list[str]:
    code = ("import sys, runpy; sys.argv = ['train.py', '--help']\n"
            "try:\n    runpy.run_path('train.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)")
    out = subprocess.run(["uv", "run", "python", "-c", code], cwd=ROOT, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return eval(out.stderr.strip().splitlines()[-1])  # a list literal we printed


def time_first_step() -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "first.json"
        path = f"{ROOT / 'benchmarks'}:{os.environ.get('PYTHONPATH', '')}"
        env = dict(os.environ, PYTHONPATH=path)
        start = time.time()
        subprocess.run(["uv", "run", "train.py", "trainer.enable_progress_bar=false",
                        f"hydra.run.dir={tmp}/run", "+callbacks.first._target_=startup.FirstStep",
                        f"+callbacks.first.path={marker}"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        info = json.loads(marker.read_text())
    return info["time"] - start, info["modules"]


def cached_bytecode_env() -> dict:
    """This environment with Python's bytecode caching on (as on a user's machine)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def import_costs(top: int) -> list[tuple[str, float]]:
    """Seconds of import per top-level package on the default run's path (``python -X
    importtime``: each module's own time, summed by package), largest first."""
    code = ("import train, ganzoo.gan, ganzoo.run, ganzoo.callbacks, ganzoo.loggers, "
            "ganzoo.eval.toy, ganzoo.data.toy")
    env = cached_bytecode_env()
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stderr
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith("import time:") and "|" in line and "self" not in line:
            own, _, name = line[len("import time:"):].split("|")
            package = name.strip().split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(own) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


#: What the hand loop has imported by the end of its first step (its first ``Adam.step``
#: imports torch._dynamo), and the same plus Lightning.
FLOOR_IMPORTS = ("import torch, torch._dynamo, hydra, omegaconf",
                 "import torch, torch._dynamo, hydra, omegaconf, lightning")


def import_floor(repeats: int) -> tuple[list[float], list[float]]:
    """Wall times of ``python -c`` with each of ``FLOOR_IMPORTS``, launched in alternating
    order."""
    env = cached_bytecode_env()
    codes = FLOOR_IMPORTS
    times: tuple[list[float], list[float]] = ([], [])
    for rep in range(-1, repeats):  # the first pair untimed: bytecode caches written
        for i in ((0, 1) if rep % 2 == 0 else (1, 0)):
            start = time.time()
            subprocess.run([sys.executable, "-c", codes[i]], cwd=ROOT, env=env, check=True)
            if rep >= 0:
                times[i].append(time.time() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor", type=int, default=0,
                        help="N interleaved pairs of bare imports: the hand loop's, + Lightning")
    parser.add_argument("--imports", type=int, default=12,
                        help="list the N costliest packages imported on the way to training")
    args = parser.parse_args()
    if args.imports:
        costs = import_costs(args.imports)
        print("| package | import s (own modules, -X importtime) |\n|---|---|")
        for package, seconds in costs:
            print(f"| {package} | {seconds:.3f} |")
        print()
    if args.floor:
        plain, with_lightning = import_floor(args.floor)
        med = statistics.median
        print("| imports (python -c) | median wall time (s) | runs |\n|---|---|---|")
        for name, ts in (("torch, torch._dynamo, hydra (the hand loop's)", plain),
                         ("the same + lightning", with_lightning)):
            print(f"| {name} | {med(ts):.2f} | {', '.join(f'{t:.2f}' for t in ts)} |")
        print(f"\nLightning's import: +{med(with_lightning) - med(plain):.2f} s (medians)\n")
    if not args.repeats:
        return
    helps, firsts, modules = [], [], []
    for _ in range(args.repeats):
        helps.append(time_help())
        t, modules = time_first_step()
        firsts.append(t)
    med = statistics.median
    print("| what | median wall time (s) | runs | heavy packages imported by then |")
    print("|---|---|---|---|")
    print(f"| `uv run train.py --help` | {med(helps):.2f} | "
          f"{', '.join(f'{h:.2f}' for h in helps)} | {', '.join(help_imports()) or 'none'} |")
    print(f"| `uv run train.py`: launch to end of first step | {med(firsts):.2f} | "
          f"{', '.join(f'{f:.2f}' for f in firsts)} | {', '.join(modules)} |")


if __name__ == "__main__":
    main()
