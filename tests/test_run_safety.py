"""What a run may write, and when: refused commands change nothing of an existing run,
a resumed run shares its checkpoint's settings, Hydra's own refusals are one line."""

import subprocess
import sys

import pytest

from ganzoo.checkpoint import CheckpointError
from ganzoo.console import one_line
from train import train

from .conftest import ROOT, refusal

RECORD = ("config.yaml", "hydra.yaml", "overrides.yaml")


def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A finished 2-step ring run, its directory written by the command line."""
    run = tmp_path_factory.mktemp("ring") / "run"
    res = _cli("steps=2", "eval_every=0", "trainer.enable_progress_bar=false",
               f"hydra.run.dir={run}")
    assert res.returncode == 0, res.stderr
    return run


def _snapshot(run):
    return {p.relative_to(run).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(run.rglob("*")) if p.is_file()}


def test_the_record_is_written_by_an_accepted_run(ring_run):
    assert sorted(p.name for p in ring_run.iterdir()) == [  # no empty train.log
        ".hydra", "checkpoints", "logs", "metrics.json", "samples", "samples.png"]
    assert sorted(p.name for p in (ring_run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert sorted(p.name for p in (ring_run / ".hydra").iterdir()) == list(RECORD)
    assert (ring_run / ".hydra" / "overrides.yaml").read_text().splitlines() == [
        "- steps=2", "- eval_every=0", "- trainer.enable_progress_bar=false"]


@pytest.mark.parametrize("args, message", [
    (["steps=0"], "error: steps must be >= 1, got 0"),
    (["n_critic=0", "ckpt_path={run}/checkpoints/last.ckpt"],
     "error: n_critic must be >= 1, got 0"),
    (["steps=4"], "error: the run directory {run} holds a trained run "
                  "({run}/checkpoints/last.ckpt); resume it with "
                  "ckpt_path={run}/checkpoints/last.ckpt, or choose another directory"),
    (["model.generator.hidden_dim=64", "ckpt_path={run}/checkpoints/last.ckpt"],
     "error: {run}/checkpoints/last.ckpt was trained with another architecture "
     "(generator.net.0.bias has shape (128,), expected (64,))"),
    (["loss.gp_weight=abc"], "error: Could not override 'loss.gp_weight'; To append to "
                             "your config use +loss.gp_weight=abc; Key 'gp_weight' is not in "
                             "struct"),
])
def test_a_refused_command_changes_nothing_of_an_existing_run(ring_run, args, message):
    before = _snapshot(ring_run)
    res = _cli(*(a.format(run=ring_run) for a in args), f"hydra.run.dir={ring_run}")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [message.format(run=ring_run)]
    assert _snapshot(ring_run) == before


def test_resuming_with_other_settings_is_refused(make_cfg, tmp_path):
    train(make_cfg("steps=2", f"out_dir={tmp_path / 'a'}"))
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as err:
        train(make_cfg("steps=4", "data=grid", f"ckpt_path={ckpt}", f"out_dir={tmp_path / 'b'}"))
    assert str(err.value) == (
        f"{ckpt} was trained with other settings (data.name: 'ring' there, 'grid' here); "
        "resume with the settings it was trained with, or start a new run")
    with pytest.raises(CheckpointError) as err:
        train(make_cfg("steps=4", "loss=hinge", f"ckpt_path={ckpt}", f"out_dir={tmp_path / 'c'}"))
    assert str(err.value).startswith(
        f"{ckpt} was trained with other settings (loss._target_: "
        "'ganzoo.losses.NonSaturating' there, 'ganzoo.losses.Hinge' here")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    # The same settings and a longer run: resumed.
    assert train(make_cfg("steps=4", f"ckpt_path={ckpt}", f"out_dir={tmp_path / 'd'}"))[
        "steps"] == 4


def test_labels_beyond_the_declared_class_count_are_refused(make_cfg):
    five = ("data.clusters=null", "data.num_classes=5", "model.generator.num_classes=5",
            "model.discriminator.num_classes=5")
    assert refusal(make_cfg("data=digits", *five)) == (
        "data.num_classes=5, but the digits labels run from 0 to 9")


def test_an_unusable_run_directory_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = _cli("steps=2", f"hydra.run.dir={blocker / 'run'}")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"error: {blocker / 'run'}: not a directory; the run directory (hydra.run.dir, or "
        "hydra.sweep.dir with -m) must be writable"]


def test_hydra_reports_become_one_line():
    assert one_line("In 'train': Could not find 'loss/foo'\n\nAvailable options in 'loss':\n"
                    "\tfgan\n\thinge\n\nConfig search path:\n\tprovider=hydra, path=pkg://x\n"
                    "\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack "
                    "trace.\n") == ("In 'train': Could not find 'loss/foo'; Available options "
                                    "in 'loss': fgan, hinge")


def test_a_refused_config_leaves_no_directory(tmp_path):
    res = _cli("n_critic=0", f"hydra.run.dir={tmp_path / 'new'}")
    assert res.returncode == 2 and res.stderr == "error: n_critic must be >= 1, got 0\n"
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_model_is_one_line_listing_the_models(tmp_path):
    res = _cli("model=nosuchmodel", f"hydra.run.dir={tmp_path / 'run'}")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "error: In 'train': Could not find 'model/nosuchmodel'; Available options in "
        "'model': dcgan, gaussian, mlp, pacgan, resnet"]
    assert not (tmp_path / "run").exists()


def test_imagefolder_without_its_folder_or_images_is_refused(make_cfg, tmp_path):
    missing = tmp_path / "nowhere"
    assert refusal(make_cfg("data=imagefolder", f"data.root={missing}")) == (
        f"data: imagefolder found no folder {missing}; set data.root to a folder of images "
        "(its sub-folders, if any, are classes)")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert refusal(make_cfg("data=imagefolder", f"data.root={empty}")) == (
        f"data: no readable images under {empty}")
