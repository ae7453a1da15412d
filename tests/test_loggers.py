"""Loggers: CSV, TensorBoard and W&B (offline) receive the same figures against generator
steps, and the pictures through each logger's own image API."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ganzoo.loggers import has_wandb_credentials, run_name_and_group
from train import train

TRAIN_KEYS = ["train/d_loss", "train/g_loss", "train/divergence", "train/d_real",
              "train/d_fake", "train/grad_norm_d", "train/grad_norm_g", "train/lr_g",
              "train/lr_d"]
EVAL_KEYS = ["eval/modes", "eval/hq", "eval/reverse_kl"]
SHORT = ("steps=4", "log_every=2", "eval_every=2", "data.n_eval=100")


def test_csv_has_every_key_against_generator_steps(make_cfg, tmp_path):
    metrics = train(make_cfg(*SHORT, "n_critic=2"))
    with open(tmp_path / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for key in TRAIN_KEYS + EVAL_KEYS:
        steps = sorted(int(float(r["step"])) for r in rows if r[key] != "")
        assert steps == [2, 4], key  # generator steps, not Lightning's optimiser steps
    last = [r for r in rows if r["train/grad_norm_d"] and int(float(r["step"])) == 4][0]
    assert float(last["train/grad_norm_d"]) > 0 and float(last["train/grad_norm_g"]) > 0
    assert float(last["train/grad_norm_g"]) == pytest.approx(metrics["train/grad_norm_g"])
    # A picture per evaluation; samples.png is the last one.
    pictures = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert pictures == ["step_000002.png", "step_000004.png"]
    assert (tmp_path / "samples.png").read_bytes() == \
        (tmp_path / "samples" / "step_000004.png").read_bytes()


@pytest.mark.slow
def test_tensorboard_writes_scalars_and_images(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg(*SHORT, "logger=tensorboard"))
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    for key in TRAIN_KEYS + EVAL_KEYS:
        assert [e.step for e in acc.Scalars(key)] == [2, 4], key
    assert tags["images"] == ["samples"]
    images = acc.Images("samples")
    assert [e.step for e in images] == [2, 4]
    assert images[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    assert (images[0].width, images[0].height) == (660, 660)  # the 6x6 in, 110 dpi toy plot
    assert not (tmp_path / "logs").exists()  # logger=tensorboard replaces the CSV logger


def _wandb_records(run_dir: Path) -> list[dict]:
    """The records of an offline run's transaction log, read by wandb's own reader."""
    [log] = run_dir.glob("*.wandb")
    wandb_cli = Path(sys.executable).parent / "wandb"
    out = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", str(log)],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.slow
def test_wandb_offline_run_holds_figures_config_and_images(make_cfg, tmp_path, monkeypatch,
                                                           capsys):
    key = "ganzoo-test-" + "k" * 28  # a fake key: it must never reach a file we write
    monkeypatch.setenv("WANDB_API_KEY", key)
    monkeypatch.setenv("WANDB_MODE", "offline")  # wins over the key: never online in tests
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))
    metrics = train(make_cfg(*SHORT, "logger=wandb", "logger.wandb.log_model=true"))
    [run_dir] = (tmp_path / "wandb").glob("offline-run-*")

    captured = capsys.readouterr()
    out = captured.out
    assert "wandb" not in captured.err  # no banner, no warning
    assert f"  W&B run saved offline; upload it with: wandb sync {run_dir}\n" in out

    records = _wandb_records(run_dir)
    logged: dict[str, list] = {}
    for r in records:
        if r["type"] == "history":
            item = r["history"]["item"]
            for k in {k.split(".")[0] for k in item}:  # an image is samples.<field>
                logged.setdefault(k, []).append(item["trainer/global_step"])
    for k in TRAIN_KEYS + EVAL_KEYS:
        assert logged[k] == [2, 4], k  # against generator steps
    assert logged["samples"] == [2, 4]

    [run] = [r["run"] for r in records if r["type"] == "run"]
    assert (run["display_name"], run["run_group"]) == ("default", "default")  # no overrides
    assert run["job_type"] == "train"
    summary = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"].get("update", {}))
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert summary["eval/hq"] == metrics["eval/hq"]
    assert summary["wall_time_s"] == pytest.approx(metrics["wall_time_s"], rel=1e-3)
    [artifact] = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert (artifact["type"], artifact["name"]) == ("model", f"model-{run['run_id']}")
    assert [c["path"] for c in artifact["manifest"]["contents"]] == ["last.ckpt"]
    config = {}
    for r in records:
        if r["type"] == "config":
            config.update(r["config"]["update"])
    # The full resolved config is the run config.
    assert config["steps"] == 4 and config["loss"]["_target_"] == "ganzoo.losses.NonSaturating"
    assert config["data"]["name"] == "ring" and config["logger"]["wandb"]["mode"] == "auto"
    # Nothing wandb says on the console (its banners are off; ours is the line above).
    assert not [r for r in records if r["type"] == "output_raw"]
    media = sorted((run_dir / "files" / "media" / "images").glob("samples_*.png"))
    assert len(media) == 2 and media[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["status"] == "completed"

    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_run_name_and_group_from_overrides():
    overrides = ["loss=wgan_gp", "seed=3", "data=grid", "out_dir=/x", "logger=wandb"]
    assert run_name_and_group(overrides, None) == ("loss=wgan_gp,seed=3,data=grid",
                                                   "loss=wgan_gp,data=grid")
    name, group = run_name_and_group(["loss=hinge", "seed=1", "eval_every=5"],
                                     "multirun/2026-01-02/03-04-05")
    assert (name, group) == ("loss=hinge,seed=1", "multirun/2026-01-02/03-04-05: loss=hinge")
    assert run_name_and_group([], None) == ("default", "default")


def test_wandb_credentials_come_from_env_or_netrc(tmp_path, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not has_wandb_credentials()  # no file
    netrc.write_text("machine example.com login user password secret\n")
    assert not has_wandb_credentials()  # another host
    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert has_wandb_credentials()
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert has_wandb_credentials()


def test_progress_bar_shows_losses_and_last_evaluation(make_cfg, capsys, monkeypatch):
    # On a terminal: one tqdm bar from the start, counting generator steps.
    monkeypatch.setattr(type(sys.stdout), "isatty", lambda self: True)
    train(make_cfg(*SHORT, "trainer.enable_progress_bar=true"))
    out = capsys.readouterr().out.replace("\r", "\n").splitlines()
    drawn = [line for line in out if "it/s" in line]
    assert drawn and all(line.startswith("generator steps:") for line in drawn)  # no other bar
    final = drawn[-1]
    assert final.startswith("generator steps: 100%")
    assert "4/4" in final
    for part in ("d_loss=", "g_loss=", "modes=", "hq=", "reverse_kl="):
        assert part in final, (part, final)
    assert "divergence_ref" not in final  # only the headline figures


def test_without_a_terminal_the_progress_is_a_line_every_n_steps(make_cfg, capsys):
    train(make_cfg("steps=40", "log_every=2", "eval_every=20", "trainer.enable_progress_bar=true"))
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("generator steps")]
    # 40 steps, log_every=2: a line every 2 steps would be 20; at most ~20 lines, on
    # multiples of log_every.
    assert [line.split(" · ")[0] for line in lines] == [
        f"generator steps {g}/40 ({100 * g / 40:.0f} %)" for g in range(2, 41, 2)]
    assert lines[-1].split(" · ")[2] == "ETA 0:00:00"
    assert "modes=" in lines[-1] and "d_loss=" in lines[-1]
