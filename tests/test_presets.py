"""The PacGAN 2-D presets compose with their documented values and train."""

import json
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ganzoo.nets.maxout import Maxout
from ganzoo.nets.pack import Packed
from train import train

from .conftest import slow_except

PRESETS = {"ring_pacgan": ("ring", 8), "grid_pacgan": ("grid", 25)}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_has_the_pacgan_setup(make_cfg, preset):
    cfg = make_cfg(f"experiment={preset}", fast=False)
    data, n_modes = PRESETS[preset]
    assert cfg.data.name == data and cfg.loss._target_ == "ganzoo.losses.NonSaturating"
    assert cfg.model.name == "pacgan" and cfg.penalty is None
    assert cfg.data.batch_size == 100 and cfg.data.n_train == 100_000
    assert cfg.model.latent_dim == 2 and cfg.model.pack == 1 and cfg.n_critic == 1
    for player in ("g", "d"):
        opt = cfg.optim[player]
        assert opt._target_ == "torch.optim.Adam"
        assert opt.lr == LR
        assert list(opt.betas) == [0.8, 0.999]
    assert (cfg.steps, cfg.lr_decay, cfg.eval_every) == (STEPS, LR_DECAY, 10_000)
    assert cfg.optim.g.lr == LR and cfg.optim.d.lr == LR

    dm = instantiate(cfg.data)
    assert instantiate(cfg.eval).n_modes == n_modes and dm.train_set.shape == (100_000, 2)
    G = instantiate(cfg.model.generator)
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == 4
    D = instantiate(cfg.model).discriminator
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (2, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in D.modules())


def test_preset_with_pack_builds_the_packed_critic(make_cfg):
    cfg = make_cfg("experiment=grid_pacgan", "model.pack=4", fast=False)
    D = instantiate(cfg.model).discriminator
    assert isinstance(D, Packed) and D.pack == 4
    first = next(m for m in D.modules() if isinstance(m, Maxout))
    assert first.linear.in_features == 8  # 4 points of 2 coordinates
    assert D(torch.zeros(100, 2)).shape == (25,)


def test_preset_keeps_the_chosen_loss_own_critic_steps(make_cfg):
    cfg = make_cfg("experiment=ring_pacgan", "loss=wgan_gp", fast=False)
    assert cfg.loss._target_ == "ganzoo.losses.Wasserstein" and cfg.loss.clip == 0.0
    assert cfg.penalty._target_ == "ganzoo.penalties.GradientPenalty" and cfg.n_critic == 5


def test_training_batches_come_from_the_fixed_training_set(make_cfg):
    cfg = make_cfg("experiment=grid_pacgan", "data.n_train=1000", fast=False)
    dm = instantiate(cfg.data)
    again = instantiate(cfg.data)
    assert torch.equal(dm.train_set, again.train_set)  # drawn once, from the seed
    stream = iter(dm.train_dataloader())
    batches = [next(stream) for _ in range(3)]
    rows = {tuple(r) for r in dm.train_set.tolist()}
    assert all(b.shape == (100, 2) and all(tuple(r) in rows for r in b.tolist())
               for b in batches)
    again.seek(2)  # a pure function of (seed, position): resumable
    assert torch.equal(next(iter(again.train_dataloader())), batches[2])


@pytest.mark.parametrize("preset", slow_except(PRESETS, "grid_pacgan"))
def test_preset_trains(make_cfg, preset):
    metrics = train(make_cfg(f"experiment={preset}", "steps=3", "model.pack=2"))
    assert metrics["status"] == "completed" and metrics["steps"] == 3
    # A seeded 3-step run on CPU is deterministic. The barely trained generator's points
    # lie within 0.18 of the origin: far from every ring mode (radius 1, std 0.01), and
    # all but 1 of the 200 on the grid's centre mode (std 0.05): 1 of 25 modes, reverse
    # KL log 25.
    expected = {"ring_pacgan": (0.0, 0.0, math.inf),
                "grid_pacgan": (1.0, 99.5, math.log(25))}[preset]
    assert (metrics["eval/modes"], metrics["eval/hq"], metrics["eval/reverse_kl"]) == expected


# The documented budget (conf/experiment/*_pacgan.yaml, README "Mode coverage"): the paper's.
STEPS, LR_DECAY, LR = 400_000, "none", 1.0e-4


# --- benchmarks/mode_coverage.py ---------------------------------------------------------


def _bench():
    from .conftest import load_benchmark

    return load_benchmark("mode_coverage")


@pytest.mark.parametrize("config", ["nonsaturating", "wgan_gp", "fgan_reverse_kl",
                                    "fgan_reverse_kl_saddle", "pack4", "ragan",
                                    "pack2_rpgan_r1r2", "pack2_fast", "pack2_fast_mixture",
                                    "pack2_ttur_mixture", "pack2_ttur_mixture_r1",
                                    "pack2_ttur_mixture_r1_400", "pack2_ttur_mixture_r1_800",
                                    "pack2_ttur_mixture_r1_400_z8",
                                    "pack2_ttur_mixture_r1_400_z8_sigma05"])
def test_benchmark_cpu_budget_composes(make_cfg, tmp_path, config):
    bench = _bench()
    overrides = bench._overrides("grid", config, 3, "cpu", None, tmp_path)
    cfg = make_cfg(*overrides, fast=False)
    k = 5 if config == "wgan_gp" else 1
    # WGAN-GP's k = 5 critic steps get steps / 5 generator steps (the same real batches);
    # the R1 row's 2 critic steps keep the 4,000 generator steps (its label says so).
    r1 = config.startswith("pack2_ttur_mixture_r1")
    assert cfg.n_critic == (2 if r1 else k) and cfg.steps == bench.CPU_STEPS // k
    assert cfg.seed == 3
    fast = config.startswith("pack2_fast")
    ttur = config.startswith("pack2_ttur_mixture")
    wide = fast or ttur  # 200 packs of 2
    rate = 2e-3 if fast else 1e-3
    rates = (5e-4, 4e-3) if ttur else (rate, rate)
    assert (cfg.optim.g.lr, cfg.optim.d.lr) == rates and cfg.lr_decay == "linear"
    assert list(cfg.optim.d.betas) == ([0.0, 0.9] if k == 5 else [0.5, 0.999])
    pack = {"pack4": 4, "pack2_rpgan_r1r2": 2}.get(config, 2 if wide else 1)
    # PacGAN's batches hold 100 packs of m samples (the fast PacGAN2 rows: 200; the last
    # R1 rows: 400 and 800).
    base, _, narrow = config.partition("_z8")  # the _z8 rows: 400 packs
    packs = {"_400": 400, "_800": 800}.get(base[-4:], 200 if wide else 100)
    assert cfg.model.pack == pack and cfg.data.batch_size == packs * pack
    # The _z8 rows: 8 latent dimensions instead of PacGAN's 2, in both networks' view.
    latent = 8 if "_z8" in config else 2
    assert cfg.model.latent_dim == cfg.model.generator.latent_dim == latent
    assert cfg.data.name == "grid"
    assert cfg.threads == torch.get_num_threads()  # the worker's count, not threads=auto
    if config.startswith("fgan"):
        assert cfg.loss.divergence == "reverse_kl"
        assert cfg.loss.generator == ("saddle" if config.endswith("saddle") else "practical")
    if config == "wgan_gp":
        assert cfg.penalty.weight == 0.1  # the toy MLP's lambda
    if r1:
        assert (cfg.penalty._target_, cfg.penalty.weight, cfg.penalty.every) == (
            "ganzoo.penalties.R1", 0.1, 1)
    # The mixture rows' prior, narrowed for the toy MLPs (conf/tuning/prior/), seeded by the
    # run; every other row keeps N(0, I).
    mixture = "mixture" in config
    assert cfg.prior._target_ == ("ganzoo.priors.GaussianMixture" if mixture
                                  else "ganzoo.priors.Gaussian")
    if mixture:
        # The _sigma05 row: components half as wide.
        sigma = 0.05 if narrow == "_sigma05" else 0.1
        assert (cfg.prior.components, cfg.prior.radius, cfg.prior.sigma, cfg.prior.seed) == (
            50, 4.0, sigma, 3)
    if config == "ragan":
        assert cfg.loss._target_ == "ganzoo.losses.RelativisticAverage" and cfg.penalty is None
    if config == "pack2_rpgan_r1r2":
        assert cfg.loss._target_ == "ganzoo.losses.RelativisticPairing"
        assert cfg.penalty._target_ == "ganzoo.penalties.R1R2" and cfg.penalty.weight == 0.1
    paper = make_cfg(*bench._overrides("ring", config, 0, "paper", None, tmp_path), fast=False)
    assert paper.steps == 400_000 and list(paper.optim.g.betas) == (
        [0.0, 0.9] if k == 5 else [0.8, 0.999])
    assert paper.optim.g.lr == paper.optim.d.lr == 1e-4


def test_benchmark_rewrites_only_its_section(tmp_path):
    bench = _bench()
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Throughput\n\nfast\n\n## Mode coverage\n\nold\n"
                    "\n### Reading the table\n\nnotes\n\n## Start-up\n\nquick\n")
    bench.write_section(path, "## Mode coverage\n\nnew\n")
    assert path.read_text() == ("# Benchmark results\n\n## Throughput\n\nfast\n\n"
                                "## Mode coverage\n\nnew\n\n### Reading the table\n\nnotes\n"
                                "\n## Start-up\n\nquick\n")
    fresh = tmp_path / "new.md"
    bench.write_section(fresh, "## Mode coverage\n\nrows\n")
    assert fresh.read_text() == "# Benchmark results\n\n## Mode coverage\n\nrows\n"


def test_benchmark_writes_the_tracked_results_only_when_asked(tmp_path):
    bench = _bench()
    parse = bench.build_parser().parse_args
    runs, out = bench.output_paths(parse([]), "20260101-000000")
    assert runs == bench.ROOT / "outputs" / "mode_coverage" / "20260101-000000"
    assert out == runs / "RESULTS.md" and out != bench.RECORD
    assert bench.output_paths(parse(["--runs-dir", str(tmp_path)]), "t") == (
        tmp_path, tmp_path / "RESULTS.md")
    assert bench.output_paths(parse(["--out", "-"]), "t")[1] is None
    assert bench.output_paths(parse(["--out", "x.md"]), "t")[1] == Path("x.md")
    assert bench.output_paths(parse(["--update-results"]), "t")[1] == (
        bench.ROOT / "benchmarks" / "RESULTS.md")
    with pytest.raises(SystemExit) as exc:
        bench.output_paths(parse(["--update-results", "--out", "x.md"]), "t")
    assert str(exc.value) == ("error: --update-results writes benchmarks/RESULTS.md; "
                              "give it or --out, not both")


def test_benchmark_table_reports_mean_and_std_over_seeds():
    bench = _bench()
    rows = [{"data": "ring", "config": "pack2", "seed": s, "steps": 4000, "time_s": 10.0,
             "eval/modes": m, "eval/hq": hq, "eval/reverse_kl": kl}
            for s, (m, hq, kl) in enumerate([(8, 90.0, 0.1), (6, 80.0, 0.3)])]
    table = bench.table(rows, ["ring"], ["pack2"])
    assert "| ring | PacGAN2 (non-saturating) | 2 | 4000 | 7.0 ± 1.4 | 85.0 ± 7.1 | 0.20 ± 0.14 |" \
        in table
    assert "| ring | *GAN (Lin et al. 2018, Tab. 1)* | 10 | 400,000 | 6.3 ± 0.5 | 98.2 ± 0.2 " \
        in table
    rows[1]["eval/reverse_kl"] = float("inf")  # a run without high-quality samples
    assert "| inf |" in bench.table(rows, ["ring"], ["pack2"])


def test_benchmark_table_counts_diverged_runs_apart():
    bench = _bench()
    done = {"status": "completed", "steps": 4000, "time_s": 10.0}
    rows = [{"data": "ring", "config": "pack2", "seed": 0, **done, "eval/modes": 8,
             "eval/hq": 98.0, "eval/reverse_kl": 0.01},
            {"data": "ring", "config": "pack2", "seed": 1, "status": "diverged",
             "reason": "train/g_loss became nan or inf", "steps": 1500, "time_s": 5.0,
             "eval/modes": None, "eval/hq": None, "eval/reverse_kl": None},
            {"data": "ring", "config": "fgan_reverse_kl", "seed": 0, "status": "diverged",
             "reason": "train/g_loss became nan or inf", "steps": 1000, "time_s": 5.0,
             "eval/modes": None, "eval/hq": None, "eval/reverse_kl": None}]
    table = bench.table(rows, ["ring"], ["pack2", "fgan_reverse_kl"])
    # Figures over the finished run only; the diverged one is counted, not averaged.
    assert ("| ring | PacGAN2 (non-saturating) | 1 + 1 diverged | 4000 | 8.0 ± 0.0 | "
            "98.0 ± 0.0 | 0.01 ± 0.00 | 10 |") in table
    assert "| ring | f-GAN reverse KL | 0 + 1 diverged | | – | – | – | |" in table
    # Without its diverged seed pack2 would meet the ring target; with it, it does not.
    best = [line for line in bench.targets(rows) if "best is" in line]
    assert best == ["- ring: best is PacGAN2 (non-saturating), 8.00 modes, 98.0% HQ, "
                    "rKL 0.010 (target 8.0 modes, >= 97% HQ, rKL <= 0.05): NOT met"]
    rows.pop(1)
    assert bench.targets(rows)[-1].endswith(": met")


def test_benchmark_reads_back_a_finished_run_and_retrains_anything_else(tmp_path):
    bench = _bench()
    row = {"data": "ring", "config": "rsgan", "seed": 2}
    assert bench.finished_row(tmp_path, row, 4000, bench.METRICS) is None  # nothing there
    record = {"status": "completed", "steps": 4000, "eval/modes": 7.0, "eval/hq": 89.5,
              "eval/reverse_kl": 0.25, "wall_time_s": 91.0, "train/d_loss": 0.4}
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    assert bench.finished_row(tmp_path, row, 4000, bench.METRICS) == {
        **row, "status": "completed", "steps": 4000, "time_s": 91.0, "reused": True,
        "eval/modes": 7.0, "eval/hq": 89.5, "eval/reverse_kl": 0.25}
    # A reverse KL of inf (no high-quality sample) is null in metrics.json: read as inf.
    (tmp_path / "metrics.json").write_text(json.dumps({**record, "eval/reverse_kl": None}))
    assert bench.finished_row(tmp_path, row, 4000, bench.METRICS)["eval/reverse_kl"] == math.inf
    # A figure the run never logged (a key added to ganzoo after it ran) is None.
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    assert bench.finished_row(tmp_path, row, 4000, ("eval/modes", "eval/class_kl")) == {
        **row, "status": "completed", "steps": 4000, "time_s": 91.0, "reused": True,
        "eval/modes": 7.0, "eval/class_kl": None}
    # Another step budget, or a run that did not complete, is trained again.
    assert bench.finished_row(tmp_path, row, 8000, bench.METRICS) is None
    (tmp_path / "metrics.json").write_text(json.dumps({**record, "status": "diverged"}))
    assert bench.finished_row(tmp_path, row, 4000, bench.METRICS) is None


def test_benchmark_resumes_an_unfinished_run_and_refuses_another_budget(tmp_path):
    bench = _bench()
    run = tmp_path / "ring" / "rsgan" / "seed0"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "metrics.csv").write_text("step\n")
    assert bench.resume_overrides(run) == [] and not (run / "logs").exists()
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")  # stopped by a signal
    assert bench.resume_overrides(run) == [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"]
    jobs = [("ring", "rsgan", 0, "cpu", None, str(run))]
    steps_of = lambda job: bench._steps(job[1], job[3], job[4])  # noqa: E731
    assert bench.check_reusable(jobs, steps_of) is None  # no metrics.json yet
    (run / "metrics.json").write_text(json.dumps({"status": "completed", "steps": 8000}))
    assert bench.check_reusable(jobs, steps_of) == (
        f"--runs-dir: {run} holds a run of 8000 generator steps, not 4000; choose another "
        "--runs-dir")
    (run / "metrics.json").write_text(json.dumps({"status": "completed", "steps": 4000}))
    assert bench.check_reusable(jobs, steps_of) is None


def test_benchmark_updates_the_record_only_with_the_full_table():
    bench = _bench()
    parse = bench.build_parser().parse_args
    every, both = list(bench.CONFIGS), ["ring", "grid"]
    assert bench.partial_record(parse(["--update-results"]), every, both) is None
    assert bench.partial_record(parse(["--configs", "rsgan"]), ["rsgan"], both) is None
    message = ("--update-results rewrites the whole table of record, so it takes the full "
               "table only (no --configs, --data, --seeds, --budget or --steps); write a "
               "partial table with --out")
    assert bench.partial_record(parse(["--update-results"]), ["rsgan"], both) == message
    assert bench.partial_record(parse(["--update-results"]), every, ["ring"]) == message
    for extra in (["--seeds", "0,1"], ["--steps", "100"], ["--budget", "paper"]):
        assert bench.partial_record(parse(["--update-results", *extra]), every, both) == message
    with pytest.raises(SystemExit) as exc:  # argparse's one line, exit 2
        bench.main(["--update-results", "--configs", "rsgan"])
    assert exc.value.code == 2
