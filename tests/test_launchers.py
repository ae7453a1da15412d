"""Hydra launchers: joblib really runs parallel jobs; the SLURM preset renders the
sbatch settings that run DDP inside every job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import CONF, ROOT

TINY = ["steps=4", "log_every=2", "eval_every=0", "data.n_train=512", "data.n_eval=200",
        "model.generator.hidden_dim=32", "model.discriminator.hidden_dim=32",
        "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "loss=minimax,hinge", *TINY, f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""  # no warning from joblib, Hydra or the jobs
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout
    for job, loss in ((0, "minimax"), (1, "hinge")):
        metrics = json.loads((tmp_path / str(job) / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["steps"] == 4
        overrides = OmegaConf.load(tmp_path / str(job) / ".hydra" / "overrides.yaml")
        assert overrides[0] == f"loss={loss}"
        assert (tmp_path / str(job) / "checkpoints" / "last.ckpt").is_file()


def _slurm_launcher_cfg(*overrides: str):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=["hydra/launcher=slurm_ddp", *overrides],
                          return_hydra_config=True)
        return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    finally:
        GlobalHydra.instance().clear()


def test_slurm_preset_asks_one_task_and_one_gpu_per_device(tmp_path, monkeypatch):
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = _slurm_launcher_cfg("trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                                 "hydra.launcher.partition=gpu")
    assert params["_target_"] == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher")
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (2, 4, 4)

    # Render the sbatch file the launcher would submit, mapping the settings as the
    # plugin does (submitit only needs an srun on PATH to build a SLURM executor).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{
        k if k in base else f"slurm_{k}": v for k, v in params.items()
        if k not in ("_target_", "submitit_folder", "max_num_timeout")})
    sbatch = executor._executor._make_submission_file_text("python train.py", "0")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --partition=gpu", "#SBATCH --time=1440", "#SBATCH --mem=64GB"):
        assert line in sbatch.splitlines(), line
    assert "srun" in sbatch  # every task is one rank, started by SLURM


def test_slurm_preset_follows_the_trainer_config():
    params = _slurm_launcher_cfg("trainer.devices=1")
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (1, 1, 1)
