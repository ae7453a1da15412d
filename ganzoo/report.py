"""Aggregate a Hydra sweep: mean ± std of each configuration's final metrics over seeds.

    uv run train.py -m loss=minimax,nonsaturating,wgan_gp seed=0,1,2
    uv run python -m ganzoo.report multirun/2026-11-22/10-00-00 --metric train/d_loss

A job is a folder of the sweep with ``.hydra/overrides.yaml``; its configuration is
its overrides minus ``seed=``, and the jobs of one configuration are its seeds. Prints
a markdown table (only the overrides that vary name a configuration), writes the same
figures to a CSV, and plots one metric from each job's ``logs/metrics.csv`` against
generator steps: per configuration the mean over seeds with a ±1 std band.

The figures come from each job's ``metrics.json``, which every run writes whatever its
logger; the CSV logs (``logger=csv``) are read only for the curves, so a sweep logged
only to wandb or TensorBoard gets its table and no plot.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Columns of the printed table, when the jobs have them; the CSV holds every metric.
TABLE = ("eval/modes", "eval/hq", "eval/confident", "eval/reverse_kl", "eval/fid", "train/d_loss",
         "train/g_loss", "train/divergence", "wall_time_s")
SEED_KEYS = ("seed",)


class ReportError(ValueError):
    """Input the report cannot use; the message is one line for the user."""


@dataclass
class Job:
    path: Path
    overrides: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    status: str = "missing"

    @property
    def config(self) -> tuple[str, ...]:
        return tuple(o for o in self.overrides
                     if o.lstrip("+~").split("=", 1)[0] not in SEED_KEYS)


def find_jobs(sweep: Path) -> list[Job]:
    """Every job of the sweep directory, with its final metrics where it wrote them."""
    from omegaconf import OmegaConf

    if not sweep.is_dir():
        raise ReportError(f"{sweep} is not a directory (give the sweep directory that "
                          "`train.py -m` wrote, e.g. multirun/<date>/<time>)")
    jobs = []
    for overrides in sorted(sweep.rglob(".hydra/overrides.yaml")):
        job = Job(overrides.parent.parent, [str(o) for o in OmegaConf.load(overrides)])
        if job.path == sweep:
            raise ReportError(f"{sweep} is the directory of a single run, not of a sweep "
                              "(`train.py -m` writes one folder per job)")
        metrics = job.path / "metrics.json"
        if metrics.is_file():
            data = json.loads(metrics.read_text())
            job.status = str(data.get("status", "completed"))
            job.metrics = {k: float(v) for k, v in data.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
        jobs.append(job)
    if not jobs:
        raise ReportError(f"{sweep} holds no jobs (no <job>/.hydra/overrides.yaml below it); "
                          "is it the directory of a `train.py -m` sweep?")
    return jobs


def group(jobs: list[Job]) -> dict[tuple[str, ...], list[Job]]:
    groups: dict[tuple[str, ...], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[job.config].append(job)
    return dict(groups)


def _label(config: tuple[str, ...], common: set[str]) -> str:
    varying = [o for o in config if o not in common]
    return " ".join(varying) or "(all jobs alike)"


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for one value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan


def summarise(jobs: list[Job]) -> tuple[list[dict], list[str], set[str]]:
    """One row per configuration: label, seeds, and mean/std/n per metric."""
    groups = group(jobs)
    common = set.intersection(*(set(c) for c in groups))
    keys = sorted({k for job in jobs for k in job.metrics})
    rows = []
    for config, members in groups.items():
        done = [j for j in members if j.status == "completed"]
        row = {"configuration": _label(config, common), "jobs": len(members),
               "completed": len(done)}
        for key in keys:
            values = [j.metrics[key] for j in done if key in j.metrics
                      and math.isfinite(j.metrics[key])]
            if values:
                row[key] = (*_mean_std(values), len(values))
        rows.append(row)
    return rows, keys, common


def _fmt(cell: tuple[float, float, int] | None) -> str:
    if cell is None:
        return "–"
    mean, std, _ = cell
    return f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}"


def markdown(rows: list[dict], keys: list[str]) -> str:
    cols = [k for k in TABLE if k in keys]
    lines = ["| configuration | seeds | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for row in rows:
        seeds = f"{row['completed']}" + ("" if row["completed"] == row["jobs"]
                                         else f" of {row['jobs']}")
        lines.append(f"| {row['configuration']} | {seeds} | "
                     + " | ".join(_fmt(row.get(k)) for k in cols) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict], keys: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["configuration", "jobs", "completed"]
                        + [f"{k}_{s}" for k in keys for s in ("mean", "std", "n")])
        for row in rows:
            cells = [row["configuration"], row["jobs"], row["completed"]]
            for k in keys:
                mean, std, n = row.get(k, (math.nan, math.nan, 0))
                cells += ["" if math.isnan(mean) else mean, "" if math.isnan(std) else std, n]
            writer.writerow(cells)


def read_curve(job: Job, metric: str) -> dict[int, float]:
    """{generator step: value} of one metric from a job's logs/metrics.csv."""
    path = job.path / "logs" / "metrics.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {int(float(r["step"])): float(r[metric]) for r in csv.DictReader(f)
                if r.get(metric) not in (None, "")}


def has_curves(jobs: list[Job]) -> bool:
    """Whether any job logged to CSV; without one there is nothing to plot, which is no
    error (a wandb- or TensorBoard-only sweep still has its metrics.json)."""
    return any((j.path / "logs" / "metrics.csv").is_file() for j in jobs)


def plot(path: Path, jobs: list[Job], metric: str) -> None:
    """The metric against generator steps: per configuration the mean over its seeds
    at the steps every seed logged, with a ±1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group(jobs)
    common = set.intersection(*(set(c) for c in groups))
    curves = {config: [c for c in (read_curve(j, metric) for j in members) if c]
              for config, members in groups.items()}
    if not any(curves.values()):
        raise ReportError(f"--metric {metric}: no job's logs/metrics.csv has it")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for config, seeds in curves.items():
        if not seeds:
            continue
        steps = sorted(set.intersection(*(set(c) for c in seeds)))
        values = np.array([[c[s] for s in steps] for c in seeds])  # (seeds, steps)
        mean = values.mean(axis=0)
        # Markers: a configuration logged at one step is a point, which a bare line hides.
        line, = ax.plot(steps, mean, marker="o", ms=3,
                        label=f"{_label(config, common)} (n={len(seeds)})")
        if len(seeds) > 1:
            std = values.std(axis=0, ddof=1)
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("generator steps")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganzoo.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="the sweep directory of `train.py -m`")
    parser.add_argument("--metric", default="train/d_loss",
                        help="the logged metric to plot against generator steps")
    parser.add_argument("--csv", type=Path, help="where the table goes as CSV "
                        "(default: <sweep>/report.csv)")
    parser.add_argument("--plot", type=Path, help="where the plot goes "
                        "(default: <sweep>/report_<metric>.png)")
    args = parser.parse_args(argv)
    try:
        jobs = find_jobs(args.sweep)
        rows, keys, common = summarise(jobs)
        csv_path = args.csv or args.sweep / "report.csv"
        plot_path = args.plot or args.sweep / f"report_{args.metric.replace('/', '_')}.png"
        if has_curves(jobs):
            plot(plot_path, jobs, args.metric)
        write_csv(csv_path, rows, keys)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if common:
        print("all jobs: " + " ".join(sorted(common)) + "\n")
    print(markdown(rows, keys))
    print(f"\ntable: {csv_path}")
    print(f"plot:  {plot_path}" if has_curves(jobs) else
          "plot:  none (no job has logs/metrics.csv; curves need logger=csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
