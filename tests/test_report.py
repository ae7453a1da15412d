"""ganzoo.report over a real multirun of tiny jobs, and over bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from statistics import mean, stdev

import pytest
from omegaconf import OmegaConf

from ganzoo.report import main
from tests.conftest import ROOT

TINY = ["steps=4", "log_every=2", "eval_every=0", "data.n_train=512", "data.n_eval=200",
        "model.generator.hidden_dim=32", "model.discriminator.hidden_dim=32",
        "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """`train.py -m loss=minimax,nonsaturating seed=0,1`: four jobs, two configurations."""
    out = tmp_path_factory.mktemp("sweep")
    proc = subprocess.run([sys.executable, "train.py", "-m", "loss=minimax,nonsaturating",
                           "seed=0,1", *TINY, f"hydra.sweep.dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    return out


@pytest.mark.slow
def test_every_job_has_its_own_directory_and_metrics(sweep):
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1", "2", "3"]
    runs = [list(OmegaConf.load(sweep / j / ".hydra" / "overrides.yaml"))[:2] for j in jobs]
    assert runs == [["loss=minimax", "seed=0"], ["loss=minimax", "seed=1"],
                    ["loss=nonsaturating", "seed=0"], ["loss=nonsaturating", "seed=1"]]
    for j in jobs:
        assert json.loads((sweep / j / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_report_collapses_seeds_into_mean_and_std(sweep, capsys):
    assert main([str(sweep), "--metric", "train/g_loss"]) == 0
    out = capsys.readouterr().out
    final = {j: json.loads((sweep / str(j) / "metrics.json").read_text()) for j in range(4)}
    with open(sweep / "report.csv", newline="") as f:
        rows = {r["configuration"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["loss=minimax", "loss=nonsaturating"]
    for config, jobs in (("loss=minimax", (0, 1)), ("loss=nonsaturating", (2, 3))):
        row = rows[config]
        assert (row["jobs"], row["completed"]) == ("2", "2")
        for key in ("train/d_loss", "train/g_loss", "eval/divergence_ref", "wall_time_s"):
            values = [final[j][key] for j in jobs]
            assert float(row[f"{key}_mean"]) == pytest.approx(mean(values), rel=1e-12)
            assert float(row[f"{key}_std"]) == pytest.approx(stdev(values), rel=1e-12)
            assert row[f"{key}_n"] == "2"
        g = [final[j]["train/g_loss"] for j in jobs]
        assert f"| {config} | 2 | " in out
        assert f"{mean(g):.4g} ± {stdev(g):.2g}" in out
    # Overrides shared by every job are said once, not repeated per configuration.
    assert out.splitlines()[0].startswith("all jobs: ")
    assert "steps=4" in out.splitlines()[0]
    png = sweep / "report_train_g_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "is not a directory"),
    (lambda tmp: tmp, "holds no jobs"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, make, message):
    assert main([str(make(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_a_single_run_is_not_a_sweep(tmp_path, capsys):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    assert main([str(tmp_path)]) == 2
    assert "single run" in capsys.readouterr().err


@pytest.mark.slow
def test_unknown_metric_names_the_flag(sweep, capsys):
    assert main([str(sweep), "--metric", "train/nothing", "--csv", str(sweep / "x.csv")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --metric train/nothing: no job's logs/metrics.csv has it")


def _job(sweep, name: str, overrides: list[str], metrics: dict) -> None:
    """One job folder as `train.py -m logger=wandb` leaves it: no logs/metrics.csv."""
    (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / name / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    (sweep / name / "wandb").mkdir()
    (sweep / name / "metrics.json").write_text(json.dumps(metrics))


def test_a_sweep_without_csv_logs_gets_its_table_from_metrics_json(tmp_path, capsys):
    for name, loss, seed, d_loss in (("0", "minimax", 0, 1.0), ("1", "minimax", 1, 2.0),
                                     ("2", "wgan_gp", 0, -3.0), ("3", "wgan_gp", 1, -5.0)):
        _job(tmp_path, name, [f"loss={loss}", f"seed={seed}", "logger=wandb"],
             {"status": "completed", "train/d_loss": d_loss, "wall_time_s": 10.0})
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "all jobs: logger=wandb",
        "",
        "| configuration | seeds | train/d_loss | wall_time_s |",
        "|---|---|---|---|",
        "| loss=minimax | 2 | 1.5 ± 0.71 | 10 ± 0 |",
        "| loss=wgan_gp | 2 | -4 ± 1.4 | 10 ± 0 |",
        "",
        f"table: {tmp_path / 'report.csv'}",
        "plot:  none (no job has logs/metrics.csv; curves need logger=csv)",
    ]
    assert not list(tmp_path.glob("*.png"))
    with open(tmp_path / "report.csv", newline="") as f:
        rows = {r["configuration"]: r for r in csv.DictReader(f)}
    assert float(rows["loss=wgan_gp"]["train/d_loss_mean"]) == -4.0


def test_a_series_of_one_step_is_drawn_as_a_point(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from ganzoo.report import find_jobs, plot

    for name, seed in (("0", 0), ("1", 1)):
        _job(tmp_path, name, ["loss=minimax", f"seed={seed}"], {"status": "completed"})
        (tmp_path / name / "logs").mkdir()
        (tmp_path / name / "logs" / "metrics.csv").write_text(
            f"step,train/d_loss\n4,{1.0 + seed}\n")
    drawn = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig),
                                                                   save(fig, *a, **k)))
    plot(tmp_path / "p.png", find_jobs(tmp_path), "train/d_loss")
    (line,) = drawn[0].axes[0].lines
    assert line.get_marker() == "o"
    assert (list(line.get_xdata()), list(line.get_ydata())) == ([4], [1.5])
