"""Resuming never unpickles code: train.py reads ckpt_path with weights_only=True (through
ganzoo.checkpoint.read_checkpoint) before Lightning opens the file."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganzoo.checkpoint import CheckpointError, read_checkpoint

from .conftest import ROOT


class Touch:
    """Unpickled by full pickle (weights_only=False), this creates the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _armed(path: Path, victim: Path) -> Path:
    torch.save({"state_dict": {}, "ganzoo": {"g_step": Touch(victim)}}, path)
    return path


def test_the_payload_runs_code_under_full_unpickling(tmp_path):
    """What the refusal below guards against."""
    victim = tmp_path / "created_by_torch_load"
    torch.load(_armed(tmp_path / "armed.ckpt", victim), weights_only=False)
    assert victim.exists()


def test_read_checkpoint_names_the_code_in_one_line(tmp_path):
    armed = _armed(tmp_path / "armed.ckpt", tmp_path / "victim")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(armed)
    assert str(err.value) == (f"{armed} holds more than tensors and plain data: its pickle "
                              "would call getattr when loaded; ganzoo loads checkpoints with "
                              "weights_only=True and refuses it")
    assert not (tmp_path / "victim").exists()


def test_resume_from_an_armed_checkpoint_exits_2_and_runs_nothing(tmp_path):
    victim = tmp_path / "victim"
    armed = _armed(tmp_path / "armed.ckpt", victim)
    res = subprocess.run(
        [sys.executable, "train.py", f"ckpt_path={armed}", "steps=2",
         "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"error: {armed} holds more than tensors and plain data: its pickle would call "
        "getattr when loaded; ganzoo loads checkpoints with weights_only=True and refuses it"]
    assert not victim.exists()
