"""Mode coverage on the 2-D ring and grid, beside the published VEEGAN / PacGAN tables.

Trains every configuration on ``experiment=ring_pacgan`` and ``experiment=grid_pacgan``
(PacGAN's 2-D setup, Lin et al. 2018) for several seeds, and prints the mean ± standard
deviation over seeds of the modes covered, the % of high-quality samples and the reverse
KL (2,500 samples; ``ganzoo.metrics.toy``) next to the published rows. The table is also
written, as a "Mode coverage" section, into ``RESULTS.md`` of the run directory
(``outputs/mode_coverage/<time>/RESULTS.md``), or into ``--out``. The tracked
``benchmarks/RESULTS.md`` holds the 5-seed table of record, so a smoke run must not
overwrite it: it is updated only with ``--update-results`` (its ### subsections and its
other sections are kept).

    uv run python benchmarks/mode_coverage.py --update-results  # every config x 5 seeds x 2
    uv run python benchmarks/mode_coverage.py --data grid --configs nonsaturating,pack4 \\
        --seeds 0,1 --jobs 2                                    # table in the run directory
    uv run python benchmarks/mode_coverage.py --steps 4000      # another step budget

Runs go to ``--runs-dir`` (each a normal run directory: metrics.json, samples.png, the
checkpoint; a run that already completed there is read back, not trained again, and one
stopped part-way resumes from its checkpoint, so an interrupted table finishes by
repeating its command with the same ``--runs-dir``);
``--jobs`` runs that many trainings at once in separate processes, each with
``cpu_count // jobs`` torch threads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: The tracked table of record, written only with --update-results.
RECORD = ROOT / "benchmarks" / "RESULTS.md"

#: name -> (label, Hydra overrides on top of the experiment preset)
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "nonsaturating": ("GAN (non-saturating)", ["loss=nonsaturating"]),
    "minimax": ("GAN (minimax)", ["loss=minimax"]),
    # WGAN-GP keeps its paper's optimiser (Adam 1e-4, betas (0, 0.9), k = 5 critic steps)
    # and the MLPs' toy lambda = 0.1 (conf/tuning/penalty/pacgan_gp.yaml).
    "wgan_gp": ("WGAN-GP", ["loss=wgan_gp", "optim.g.betas=[0.0,0.9]",
                            "optim.d.betas=[0.0,0.9]"]),
    "fgan_kl": ("f-GAN KL", ["loss=fgan", "loss.divergence=kl"]),
    "fgan_reverse_kl": ("f-GAN reverse KL", ["loss=fgan", "loss.divergence=reverse_kl"]),
    # The practical reverse-KL update minimises E[exp(-V(G(z)))]; where the data density
    # is ~0 the optimal critic is -inf, so this loss overflows (docs/losses.md). The
    # saddle update (Eq. 6) is linear in V there.
    "fgan_reverse_kl_saddle": ("f-GAN reverse KL, saddle update",
                               ["loss=fgan", "loss.divergence=reverse_kl",
                                "loss.generator=saddle"]),
    # PacGAN draws 100 packs per batch: m x 100 samples (the presets' data.batch_size
    # counts samples).
    "pack2": ("PacGAN2 (non-saturating)", ["loss=nonsaturating", "model.pack=2",
                                           "data.batch_size=200"]),
    "pack4": ("PacGAN4 (non-saturating)", ["loss=nonsaturating", "model.pack=4",
                                           "data.batch_size=400"]),
    # Relativistic critics (Jolicoeur-Martineau 2018) and R3GAN's objective (Huang et al.
    # 2024): the pairing loss with R1 + R2 at the toy MLPs' gamma (conf/experiment/r3gan).
    "rsgan": ("RSGAN (relativistic pairing)", ["loss=rsgan"]),
    "ragan": ("RaGAN (relativistic average)", ["loss=ragan"]),
    "rpgan_r1r2": ("RpGAN + R1 + R2, gamma 0.1 (R3GAN objective)",
                   ["loss=rpgan", "penalty=r1r2", "penalty.weight=0.1"]),
    "pack2_rpgan_r1r2": ("PacGAN2 + RpGAN + R1 + R2, gamma 0.1",
                         ["loss=rpgan", "penalty=r1r2", "penalty.weight=0.1", "model.pack=2",
                          "data.batch_size=200"]),
    # PacGAN2 with twice PacGAN's packs per batch and, in the CPU budget, twice its Adam
    # rate (CPU_EXTRA): the probes of RESULTS.md "Probes of gamma, EMA and the optimiser".
    # The label names the CPU budget's rate; --budget paper keeps the paper's 1e-4.
    "pack2_fast": ("PacGAN2, 200 packs per batch, Adam 2e-3",
                   ["loss=nonsaturating", "model.pack=2", "data.batch_size=400"]),
    # The same with a latent mixture of 50 Gaussians instead of N(0, I) (prior=mixture,
    # ganzoo/priors.py; no labels): no prior mass between the modes.
    "pack2_fast_mixture": ("PacGAN2, 200 packs, Adam 2e-3, mixture prior (50 components)",
                           ["loss=nonsaturating", "model.pack=2", "data.batch_size=400",
                            "prior=mixture"]),
    # The same with two timescales, a slower generator than critic (CPU_EXTRA: G 5e-4,
    # D 4e-3): the sharpest grid probe of RESULTS.md "A latent mixture prior".
    "pack2_ttur_mixture": ("PacGAN2, 200 packs, mixture prior (50 components), Adam G 5e-4 / "
                           "D 4e-3", ["loss=nonsaturating", "model.pack=2",
                                      "data.batch_size=400", "prior=mixture"]),
    # The same with R1 (Mescheder et al. 2018) at gamma 0.1 and two critic steps per
    # generator step: the sharpest grid probe of RESULTS.md "R1 and two critic steps".
    # It keeps the 4,000 generator steps (N_CRITIC leaves it out), so its critic sees
    # 8,000 real batches, twice the other rows'; the label says so.
    "pack2_ttur_mixture_r1": ("PacGAN2, 200 packs, mixture prior (50 components), Adam G 5e-4 "
                              "/ D 4e-3, R1 gamma 0.1, 2 critic steps (8,000 critic updates)",
                              ["loss=nonsaturating", "model.pack=2", "data.batch_size=400",
                               "prior=mixture", "penalty=r1", "penalty.weight=0.1",
                               "n_critic=2"]),
    # The same with 400 packs per batch (800 samples): the R1 row's weakest seed (3) went
    # from 78.2 to 90.8 % high quality (RESULTS.md "Four hundred packs"); twice the samples
    # per critic and generator step, about 1.5 times the wall time.
    "pack2_ttur_mixture_r1_400": ("PacGAN2, 400 packs, mixture prior (50 components), Adam "
                                  "G 5e-4 / D 4e-3, R1 gamma 0.1, 2 critic steps (8,000 "
                                  "critic updates)",
                                  ["loss=nonsaturating", "model.pack=2",
                                   "data.batch_size=800", "prior=mixture", "penalty=r1",
                                   "penalty.weight=0.1", "n_critic=2"]),
    "pack2_ttur_mixture_r1_800": ("PacGAN2, 800 packs, mixture prior (50 components), Adam "
                                  "G 5e-4 / D 4e-3, R1 gamma 0.1, 2 critic steps (8,000 "
                                  "critic updates)",
                                  ["loss=nonsaturating", "model.pack=2",
                                   "data.batch_size=1600", "prior=mixture", "penalty=r1",
                                   "penalty.weight=0.1", "n_critic=2"]),
    # The 400-pack R1 row with 8 latent dimensions instead of PacGAN's 2: the bridges
    # between neighbouring modes are gone (RESULTS.md "Eight latent dimensions").
    "pack2_ttur_mixture_r1_400_z8": ("PacGAN2, 400 packs, mixture prior (50 components) in 8 "
                                     "latent dimensions, Adam G 5e-4 / D 4e-3, R1 gamma 0.1, "
                                     "2 critic steps (8,000 critic updates)",
                                     ["loss=nonsaturating", "model.pack=2",
                                      "data.batch_size=800", "prior=mixture",
                                      "model.latent_dim=8", "penalty=r1",
                                      "penalty.weight=0.1", "n_critic=2"]),
    # The same with the mixture's components half as wide (sigma 0.05 instead of 0.1): the
    # generator has less to contract, and the ring's drawn-out modes go (RESULTS.md
    # "Narrower components").
    "pack2_ttur_mixture_r1_400_z8_sigma05": ("PacGAN2, 400 packs, mixture prior (50 "
                                             "components of sigma 0.05) in 8 latent "
                                             "dimensions, Adam G 5e-4 / D 4e-3, R1 gamma "
                                             "0.1, 2 critic steps (8,000 critic updates)",
                                             ["loss=nonsaturating", "model.pack=2",
                                              "data.batch_size=800", "prior=mixture",
                                              "prior.sigma=0.05", "model.latent_dim=8",
                                              "penalty=r1", "penalty.weight=0.1",
                                              "n_critic=2"]),
}

#: Published rows, 2,500 samples per evaluation: (modes, HQ %, reverse KL), each
#: (mean, ±) or None where the paper gives no value. The GAN and PacGAN rows are
#: Lin et al. 2018 (PacGAN), Table 1 (same architecture as here, 10 runs each); the
#: VEEGAN row is Srivastava et al. 2017, Table 1 (another architecture; no spread, no KL).
PUBLISHED: dict[str, list[tuple[str, tuple, tuple, tuple]]] = {
    "ring": [
        ("VEEGAN (Srivastava et al. 2017, Tab. 1)", (8.0, None), (52.9, None), (None, None)),
        ("GAN (Lin et al. 2018, Tab. 1)", (6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
        ("PacGAN2 (Lin et al. 2018, Tab. 1)", (7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
        ("PacGAN3 (Lin et al. 2018, Tab. 1)", (7.8, 0.1), (97.7, 0.3), (0.10, 0.02)),
        ("PacGAN4 (Lin et al. 2018, Tab. 1)", (7.8, 0.1), (95.9, 1.4), (0.07, 0.02)),
    ],
    "grid": [
        ("VEEGAN (Srivastava et al. 2017, Tab. 1)", (24.6, None), (40.0, None), (None, None)),
        ("GAN (Lin et al. 2018, Tab. 1)", (17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
        ("PacGAN2 (Lin et al. 2018, Tab. 1)", (23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
        ("PacGAN3 (Lin et al. 2018, Tab. 1)", (24.6, 0.4), (94.2, 0.4), (0.06, 0.02)),
        ("PacGAN4 (Lin et al. 2018, Tab. 1)", (24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
    ],
}
PUBLISHED_NOTE = (
    "Published rows as cited from memory of the papers and the PacGAN repository's "
    "Table 1 image (not re-read from the PDFs for this table): the modes columns of the "
    "GAN and PacGAN rows are the most certain; treat the PacGAN rows' high-quality and "
    "reverse-KL values and the VEEGAN row as unverified. PacGAN's ± is over 10 runs "
    "(reported, we believe, as a standard error); ours is the standard deviation over seeds.")

METRICS = ("eval/modes", "eval/hq", "eval/reverse_kl")

#: The CPU budget (default): PacGAN's architecture, data and batch, but 100x fewer steps
#: than its 400,000, with a 10x learning rate, beta1 = 0.5 and linear decay to zero so that
#: the short run ends converged. Losses with k critic steps per generator step get
#: steps / k generator steps: every run sees the same number of real batches.
CPU_STEPS = 4000
CPU_BUDGET = ["optim.g.betas=[0.5,0.999]", "optim.d.betas=[0.5,0.999]", "lr_decay=linear",
              "eval_every=0", "log_every=500"]
#: The CPU budget's Adam rate. It applies to the configurations trained with Adam only: a
#: loss whose paper uses RMSProp (loss=wasserstein, conf/optim/rmsprop.yaml) keeps its rate.
CPU_ADAM_LR = ["optim.g.lr=1e-3", "optim.d.lr=1e-3"]
RMSPROP_LOSSES = ("wasserstein",)
FAST_ADAM_LR = ["optim.g.lr=2e-3", "optim.d.lr=2e-3"]  # the fast PacGAN2 rows
TTUR_ADAM_LR = ["optim.g.lr=5e-4", "optim.d.lr=4e-3"]  # two timescales: a faster critic
CPU_EXTRA = {"wgan_gp": ["optim.g.lr=1e-3", "optim.d.lr=1e-3",
                         "optim.g.betas=[0.0,0.9]", "optim.d.betas=[0.0,0.9]"],
             # every row named pack2_fast* / pack2_ttur* (their labels name the rates)
             **{name: FAST_ADAM_LR for name in CONFIGS if name.startswith("pack2_fast")},
             **{name: TTUR_ADAM_LR for name in CONFIGS if name.startswith("pack2_ttur")}}
N_CRITIC = {"wgan_gp": 5}


def _steps(config: str, budget: str, steps: int | None) -> int | None:
    if steps is None and budget == "cpu":
        steps = CPU_STEPS
    return None if steps is None else max(1, steps // N_CRITIC.get(config, 1))


def _overrides(data: str, config: str, seed: int, budget: str, steps: int | None,
               out: Path) -> list[str]:
    steps = _steps(config, budget, steps)
    extra = [f"steps={steps}", f"ckpt_every={steps}"] if steps else []
    if budget == "cpu":
        adam = not any(f"loss={loss}" in CONFIGS[config][1] for loss in RMSPROP_LOSSES)
        extra += CPU_BUDGET + (CPU_ADAM_LR if adam else []) + CPU_EXTRA.get(config, [])
    import torch

    return [f"experiment={data}_pacgan", *CONFIGS[config][1], f"seed={seed}", *extra,
            f"out_dir={out}", "trainer.enable_progress_bar=false",
            f"threads={torch.get_num_threads()}"]  # the worker's count (--threads)


CPU_NOTE = (
    f" with the CPU budget: {CPU_STEPS} generator steps (WGAN-GP, 5 critic steps each: "
    f"{CPU_STEPS // 5}) instead of the paper's 400,000, Adam 1e-3 and beta1 = 0.5 (WGAN-GP: "
    f"betas (0, 0.9); the fast PacGAN2 rows: 2e-3) instead of 1e-4 and 0.8, learning rates "
    f"decaying linearly to zero; batches of 100 samples (packed runs: 100 packs of m "
    f"samples, as PacGAN draws them; the fast PacGAN2 rows: 200 packs)")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_one(job: tuple[str, str, int, str, int | None, str]) -> dict:
    """Train one (data, config, seed); return its final metrics (stdout kept in run.log)."""
    data, config, seed, budget, steps, out = job
    out_dir = Path(out)
    return run_row(_overrides(data, config, seed, budget, steps, out_dir), out_dir,
                   {"data": data, "config": config, "seed": seed},
                   _steps(config, budget, steps), METRICS)


def run_row(overrides: list[str], out_dir: Path, row: dict, steps: int | None,
            metrics: tuple[str, ...]) -> dict:
    """The row of the run in ``out_dir``: read back if it finished, else trained (resuming
    where it stopped)."""
    done = finished_row(out_dir, row, steps, metrics)
    if done is not None:
        return done
    return train_row(overrides + resume_overrides(out_dir), out_dir, row, metrics)


def resume_overrides(out_dir: Path) -> list[str]:
    """How an unfinished run in ``out_dir`` goes on: from its last checkpoint (a run
    stopped by a signal saved one), or afresh where it left none (its logs removed: they
    are of steps no checkpoint kept)."""
    ckpt = out_dir / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        return [f"ckpt_path={ckpt}"]
    if (out_dir / "logs").is_dir():
        shutil.rmtree(out_dir / "logs")
    return []


def check_reusable(jobs: list, steps_of) -> str | None:
    """Why ``jobs`` cannot use the run directories they name (a completed run there of
    another step budget), or None."""
    for job in jobs:
        path = Path(job[-1]) / "metrics.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        want = steps_of(job)
        if record.get("status") == "completed" and want is not None and (
                record.get("steps") != want):
            return (f"--runs-dir: {path.parent} holds a run of {record.get('steps')} "
                    f"generator steps, not {want}; choose another --runs-dir")
    return None


def finished_row(out_dir: Path, row: dict, steps: int | None, metrics: tuple[str, ...]
                 ) -> dict | None:
    """The row of a run that already finished in ``out_dir`` (its metrics.json says
    completed after ``steps`` generator steps), so that a table interrupted part-way is
    finished by running the same command again; None if there is none."""
    path = out_dir / "metrics.json"
    if steps is None or not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("status") != "completed" or record.get("steps") != steps:
        return None
    # metrics.json writes a non-finite figure as null; of these figures only a reverse KL
    # can be one (inf: no sample counted), as the table reads it. A figure the run did not
    # log at all (one added to ganzoo after the run) is None.
    return {**row, "status": "completed", "steps": steps, "time_s": record["wall_time_s"],
            "reused": True,
            **{k: None if k not in record else math.inf if record[k] is None else record[k]
               for k in metrics}}


def train_row(overrides: list[str], out_dir: Path, row: dict, metrics: tuple[str, ...]
              ) -> dict:
    """One benchmark training in ``out_dir`` (its output kept in run.log): ``row`` with the
    status, generator steps, wall time and the final ``metrics`` (None if it diverged:
    a diverged run is a row of the table, not a crash)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ganzoo.gan import NonFiniteLossError
    from train import train

    out_dir.mkdir(parents=True, exist_ok=True)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    log = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(log):
            final = train(cfg)
    except NonFiniteLossError as exc:
        return {**row, "status": "diverged", "reason": str(exc),
                "steps": json.loads((out_dir / "metrics.json").read_text())["steps"],
                "time_s": time.perf_counter() - start, **{k: None for k in metrics}}
    finally:
        (out_dir / "run.log").write_text(log.getvalue())
    return {**row, "status": "completed", "steps": final["steps"],
            "time_s": time.perf_counter() - start, **{k: final[k] for k in metrics}}


def cpus_and_threads(n_jobs: int) -> tuple[int, int]:
    """(CPUs, torch threads of each of ``n_jobs`` trainings run at once)."""
    cpus = os.cpu_count() or 1
    return cpus, max(1, cpus // n_jobs)


def run_pool(jobs: list, n_jobs: int, worker, describe, runs: Path) -> list[dict]:
    """``worker`` over ``jobs``, ``n_jobs`` at a time in spawned processes with
    cpu_count // n_jobs torch threads each, printing ``describe(result)`` as each ends."""
    cpus, threads = cpus_and_threads(n_jobs)
    print(f"{len(jobs)} runs, {n_jobs} at a time with {threads} torch thread(s) each, "
          f"on {cpus} CPUs; run directories under {runs}", flush=True)
    results = []
    with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        for r in pool.map(worker, jobs):
            results.append(r)
            print(describe(r), flush=True)
    return results


def _describe(r: dict) -> str:
    if r["status"] == "diverged":
        return (f"  {r['data']:<4} {r['config']:<16} seed {r['seed']}  diverged: "
                f"{r['reason']}  ({r['time_s']:.0f} s)")
    return (f"  {r['data']:<4} {r['config']:<16} seed {r['seed']}  modes "
            f"{r['eval/modes']:.0f}  HQ {r['eval/hq']:5.1f}%  rKL "
            f"{r['eval/reverse_kl']:.3f}  ({r['time_s']:.0f} s"
            f"{', read back' if r.get('reused') else ''})")


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation; inf (no spread) if any value is infinite (the
    reverse KL of a run without a single high-quality sample)."""
    if not all(math.isfinite(v) for v in values):
        return math.inf, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(mean: float | None, spread: float | None, digits: int) -> str:
    if mean is None:
        return "–"
    if not math.isfinite(mean):
        return "inf"
    return f"{mean:.{digits}f}" + ("" if spread is None else f" ± {spread:.{digits}f}")


def _completed(results: list[dict], data: str, config: str) -> tuple[list[dict], int]:
    """The runs of (data, config) that finished, and how many diverged."""
    rows = [r for r in results if r["data"] == data and r["config"] == config]
    done = [r for r in rows if r.get("status", "completed") == "completed"]
    return done, len(rows) - len(done)


def table(results: list[dict], datasets: list[str], configs: list[str]) -> str:
    """The Markdown table: our rows (mean ± std over seeds) then the published ones.

    Runs whose loss became non-finite count in the seeds column ("3 + 2 diverged") and
    the figures are over the runs that finished."""
    lines = ["| data | configuration | seeds | generator steps | modes | high quality % "
             "| reverse KL | time per run (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for data in datasets:
        for config in configs:
            rows, diverged = _completed(results, data, config)
            if not rows and not diverged:
                continue
            seeds = f"{len(rows)}" + (f" + {diverged} diverged" if diverged else "")
            if not rows:
                lines.append(f"| {data} | {CONFIGS[config][0]} | {seeds} | | – | – | – | |")
                continue
            modes, hq, kl = (_mean_std([r[k] for r in rows]) for k in METRICS)
            steps = sorted({r["steps"] for r in rows})
            t = statistics.fmean(r["time_s"] for r in rows)
            lines.append(f"| {data} | {CONFIGS[config][0]} | {seeds} | "
                         f"{'/'.join(map(str, steps))} | {_fmt(*modes, 1)} | {_fmt(*hq, 1)} | "
                         f"{_fmt(*kl, 2)} | {t:.0f} |")
        for label, modes, hq, kl in PUBLISHED[data]:
            lines.append(f"| {data} | *{label}* | 10 | 400,000 | {_fmt(*modes, 1)} | "
                         f"{_fmt(*hq, 1)} | {_fmt(*kl, 2)} | |")
    return "\n".join(lines)


def targets(results: list[dict]) -> list[str]:
    """The issue's targets, each with the measured value and met / NOT met. A
    configuration with a diverged run meets no target."""
    lines = []
    for data, floor in (("ring", 6.3), ("grid", 17.3)):
        done = _completed(results, data, "nonsaturating")[0]
        if done:
            m = statistics.fmean(r["eval/modes"] for r in done)
            lines.append(f"- {data}: non-saturating GAN covers {m:.1f} modes (published GAN "
                         f"row {floor}): {'met' if m >= floor else 'NOT met'}")
    for data, (n_modes, hq_min) in (("ring", (8, 97.0)), ("grid", (25, 95.0))):
        best = None
        for config in CONFIGS:
            done, diverged = _completed(results, data, config)
            if not done:
                continue
            vals = [statistics.fmean(r[k] for r in done) for k in METRICS]
            ok = vals[0] >= n_modes and vals[1] >= hq_min and vals[2] <= 0.05 and not diverged
            key = (ok, vals[0], vals[1], -vals[2])
            if best is None or key > best[0]:
                best = (key, config, vals)
        if best is not None:
            (ok, *_), config, (modes, hq, kl) = best
            need = f"{n_modes}.0 modes, >= {hq_min:.0f}% HQ, rKL <= 0.05"
            lines.append(f"- {data}: best is {CONFIGS[config][0]}, {modes:.2f} modes, "
                         f"{hq:.1f}% HQ, rKL {kl:.3f} (target {need}): "
                         f"{'met' if ok else 'NOT met'}")
    return lines


def write_section(path: Path, body: str, heading: str = "## Mode coverage") -> None:
    """Replace (or add) the generated text of the ``heading`` section of a Markdown file:
    from its heading to the next heading of any level, so hand-written subsections
    (### ...) and the other sections are kept."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find("\n" + heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n#", start + 1)
        text = text[:start + 1] + body + (text[end:] if end >= 0 else "")
    path.write_text(text.rstrip("\n") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated, from: {', '.join(CONFIGS)}")
    parser.add_argument("--data", default="ring,grid", help="ring, grid or both")
    parser.add_argument("--budget", choices=("cpu", "paper"), default="cpu",
                        help="cpu: 4,000 steps, Adam 1e-3, beta1 0.5, linear decay (an hour "
                             "for the table on 2 cores); paper: the presets as they are "
                             "(PacGAN's 400,000 steps, Adam 1e-4, beta1 0.8)")
    parser.add_argument("--steps", type=int, default=None,
                        help="generator steps per run for k = 1 losses (k = 5: a fifth); "
                             "default: the budget's")
    parser.add_argument("--jobs", type=int, default=2, help="trainings run at once")
    parser.add_argument("--out", default=None,
                        help="Markdown file whose 'Mode coverage' section is (re)written "
                             "(default: RESULTS.md in the runs directory); '-' writes none")
    parser.add_argument("--update-results", action="store_true",
                        help=f"write the section into {RECORD.relative_to(ROOT)}, the tracked "
                             "table of record (a full run's; never by default)")
    parser.add_argument("--runs-dir", default=None,
                        help="where the run directories go (default outputs/mode_coverage/<time>)")
    return parser


def output_paths(args: argparse.Namespace, stamp: str, name: str = "mode_coverage"
                 ) -> tuple[Path, Path | None]:
    """(runs directory, Markdown file for the table or None): the table goes beside the
    runs (``outputs/<name>/<stamp>``) unless asked for elsewhere, so only --update-results
    touches the tracked file."""
    runs = Path(args.runs_dir or ROOT / "outputs" / name / stamp)
    if args.update_results and args.out is not None:
        raise SystemExit(f"error: --update-results writes {RECORD.relative_to(ROOT)}; "
                         "give it or --out, not both")
    if args.update_results:
        return runs, RECORD
    if args.out == "-":
        return runs, None
    return runs, Path(args.out) if args.out else runs / "RESULTS.md"


def partial_record(args: argparse.Namespace, configs: list[str], datasets: list[str]
                   ) -> str | None:
    """Why --update-results would lose rows of the table of record, or None: it rewrites
    the whole section, so it takes the full table only (every configuration, both data
    sets, the default seeds and budget)."""
    if not args.update_results:
        return None
    full = (set(configs) == set(CONFIGS) and set(datasets) == set(PUBLISHED)
            and args.seeds == build_parser().get_default("seeds")
            and args.budget == "cpu" and args.steps is None)
    if full:
        return None
    return ("--update-results rewrites the whole table of record, so it takes the full "
            "table only (no --configs, --data, --seeds, --budget or --steps); write a "
            "partial table with --out")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s]
    configs = [c for c in args.configs.split(",") if c]
    datasets = [d for d in args.data.split(",") if d]
    for c in configs:
        if c not in CONFIGS:
            parser.error(f"--configs: unknown {c!r}; choose from {', '.join(CONFIGS)}")
    for d in datasets:
        if d not in PUBLISHED:
            parser.error(f"--data: unknown {d!r}; choose ring or grid")
    if args.jobs < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--jobs and --steps must be >= 1")
    partial = partial_record(args, configs, datasets)
    if partial:
        parser.error(partial)
    runs, out = output_paths(args, time.strftime("%Y%m%d-%H%M%S"))
    jobs = [(d, c, s, args.budget, args.steps, str(runs / d / c / f"seed{s}"))
            for d in datasets for c in configs for s in seeds]
    refused = check_reusable(jobs, lambda job: _steps(job[1], job[3], job[4]))
    if refused:
        parser.error(refused)
    start = time.perf_counter()
    results = run_pool(jobs, args.jobs, run_one, _describe, runs)
    cpus, threads = cpus_and_threads(args.jobs)
    total = time.perf_counter() - start
    (runs / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    import torch

    machine = (f"{platform.processor() or platform.machine()}, {cpus} CPUs, "
               f"torch {torch.__version__}, {args.jobs} run(s) at a time x {threads} thread(s)")
    tab = table(results, datasets, configs)
    checks = targets(results)
    print("\n" + tab + "\n\n" + "\n".join(checks))
    print(f"\n{len(jobs)} runs in {total / 60:.1f} min on {machine}")
    if out is not None:
        cmd = "uv run python benchmarks/mode_coverage.py " + " ".join(
            sys.argv[1:] if argv is None else argv)
        body = (f"## Mode coverage\n\nModes covered (of 8 / 25), % high-quality samples and "
                f"reverse KL on 2,500 samples, mean ± standard deviation over seeds "
                f"{args.seeds}; presets `experiment=ring_pacgan` / `grid_pacgan`"
                f"{CPU_NOTE if args.budget == 'cpu' else ''}. Produced by "
                f"`{cmd.strip()}` in {total / 60:.1f} min on {machine}.\n\n{tab}\n\n"
                f"{PUBLISHED_NOTE}\n\nTargets:\n\n" + "\n".join(checks) + "\n")
        write_section(out, body)
        print(f"wrote the Mode coverage section of {out}")


if __name__ == "__main__":
    main()
