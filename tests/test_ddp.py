"""DDP through the real command line: 2 CPU processes (gloo) train as one process with
twice the batch, stay bit-identical, and write the run's outputs once."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT

# Tiny but real: ring data, MLPs, the default loss; two critic steps per generator step.
TINY = ["steps=6", "n_critic=2", "log_every=2", "eval_every=3", "ckpt_every=3",
        "data.n_train=512", "data.n_eval=200", "model.generator.hidden_dim=32",
        "model.discriminator.hidden_dim=32", "trainer.enable_progress_bar=false"]
PER_DEVICE = 16


def _train_cli(*overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *overrides], cwd=ROOT, timeout=timeout,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One 2-rank CPU run through train.py, with each rank's final state dumped."""
    tmp = tmp_path_factory.mktemp("ddp")
    run_dir, dump = tmp / "run", tmp / "dump"
    proc = _train_cli(*TINY, f"data.batch_size={PER_DEVICE}", "trainer.accelerator=cpu",
                      "trainer.devices=2", "trainer.strategy=ddp", f"hydra.run.dir={run_dir}",
                      "+callbacks.dump._target_=tests.ddp_helpers.DumpState",
                      f"+callbacks.dump.dirpath={dump}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, dump, proc


@pytest.mark.slow
def test_ranks_stay_bit_identical_and_train_on_their_own_shard(ddp_run):
    _, dump, _ = ddp_run
    r0, r1 = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["g_step"] == r1["g_step"] == 6
    assert r0["batch_sizes"] == r1["batch_sizes"] == [PER_DEVICE] * 12  # 6 x (k=2) batches
    assert r0["state"].keys() == r1["state"].keys()
    assert any(k.startswith("generator.") for k in r0["state"])
    assert any(k.startswith("discriminator.") for k in r0["state"])
    for name, value in r0["state"].items():
        assert torch.equal(value, r1["state"][name]), name


@pytest.mark.slow
def test_ddp_matches_one_process_with_the_global_batch(ddp_run, make_cfg, tmp_path):
    from train import train

    run_dir, dump, _ = ddp_run
    single = tmp_path / "single"
    cfg = make_cfg(*TINY, f"data.batch_size={2 * PER_DEVICE}",
                   "+callbacks.dump._target_=tests.ddp_helpers.DumpState",
                   f"+callbacks.dump.dirpath={single}", fast=False)
    metrics = train(cfg)
    one = torch.load(single / "rank0.pt", weights_only=True)
    ddp = torch.load(dump / "rank0.pt", weights_only=True)
    assert one["batch_sizes"] == [2 * PER_DEVICE] * 12
    assert one["state"].keys() == ddp["state"].keys()
    for name, value in one["state"].items():
        # Same start, data and noise; gradients summed in another order: equal to rounding.
        torch.testing.assert_close(ddp["initial"][name], one["initial"][name], rtol=0, atol=0)
        torch.testing.assert_close(ddp["state"][name], value, rtol=1e-5, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")
    # ... and training moved every weight of both networks far beyond that tolerance.
    for name, value in one["state"].items():
        if name.endswith(".weight"):
            assert (value - one["initial"][name]).abs().max() > 1e-4, name
    # Logged training figures are over the global batch, like the single process's.
    logged = json.loads((run_dir / "metrics.json").read_text())
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
        assert logged[key] == pytest.approx(metrics[key], rel=1e-5, abs=1e-6), key
    assert logged["eval/modes"] == metrics["eval/modes"]


@pytest.mark.slow
def test_outputs_are_written_once_by_rank_zero(ddp_run):
    run_dir, _, proc = ddp_run
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [".hydra", "checkpoints", "logs", "metrics.json", "samples", "samples.png"]
    # One sample figure per evaluation (steps 3 and 6), written by rank 0 alone.
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "step_000003.png", "step_000006.png"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.ckpt", "step_000003.ckpt"]  # the end is last.ckpt alone, not also step 6
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 6
    with open(run_dir / "logs" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # Each figure logged once per generator step, not once per rank.
    assert [r["step"] for r in rows if r["train/d_loss"]] == ["2", "4", "6"]
    assert [r["step"] for r in rows if r["eval/modes"]] == ["3", "6"]
    # One report on the console, and nothing else: no warnings, no second rank's output.
    assert proc.stdout.count("ganzoo · ring · mlp") == 1
    assert proc.stderr == ""
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["ganzoo"]["g_step"] == 6


def test_sync_batchnorm_on_cpu_is_refused_before_training(make_cfg, tmp_path):
    from ganzoo.config import ConfigError
    from train import train

    cfg = make_cfg("trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp",
                   "trainer.sync_batchnorm=true", "model.generator.batch_norm=true")
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert str(err.value) == (
        "trainer.sync_batchnorm: torch's SyncBatchNorm runs on GPUs only, not on CPU; "
        "drop it (each rank then normalises by its own batch)")
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("kind", ["toy", "images"])
def test_each_rank_draws_its_own_slice_of_the_global_batch(kind):
    from ganzoo.data.images import DeviceBatches
    from ganzoo.data.toy import RandomBatches

    def stream(batch_size: int, rank: int = 0, world_size: int = 1):
        if kind == "toy":
            s = RandomBatches(torch.arange(1000.0)[:, None], batch_size, seed=3)
        else:
            # Columns differ, so a flip shows: the slices must carry their own flips.
            images = torch.arange(2000).reshape(1000, 1, 1, 2).expand(1000, 1, 2, 2).clone()
            s = DeviceBatches(images, torch.arange(1000), batch_size, seed=3, flip=True)
        s.rank, s.world_size = rank, world_size
        s.seek(5)
        batches = iter(s)
        return [next(batches) for _ in range(3)]

    whole = stream(8)
    ranks = [stream(4, r, 2) for r in range(2)]
    for i in range(3):
        if kind == "toy":
            torch.testing.assert_close(torch.cat([ranks[0][i], ranks[1][i]]), whole[i])
        else:
            for part in range(2):  # images (with their flips) and labels
                torch.testing.assert_close(
                    torch.cat([ranks[0][i][part], ranks[1][i][part]]), whole[i][part])
    assert not torch.equal(ranks[0][0][0] if kind == "images" else ranks[0][0],
                           ranks[1][0][0] if kind == "images" else ranks[1][0])


def test_strategy_choice(make_cfg):
    from ganzoo.config import ConfigError
    from ganzoo.distributed import GANDDPStrategy, make_strategy

    assert isinstance(make_strategy(make_cfg("trainer=ddp").trainer), GANDDPStrategy)
    assert isinstance(make_strategy(make_cfg("trainer.strategy=ddp").trainer), GANDDPStrategy)
    assert isinstance(make_strategy(make_cfg("trainer.devices=2").trainer), GANDDPStrategy)
    assert isinstance(make_strategy(make_cfg("trainer.num_nodes=2").trainer), GANDDPStrategy)
    assert make_strategy(make_cfg().trainer) == "auto"
    with pytest.raises(ConfigError, match=r"^trainer.strategy: ganzoo trains with 'auto' .* "
                                          r"got 'ddp_spawn'$"):
        make_strategy(make_cfg("trainer.strategy=ddp_spawn").trainer)


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    proc = _train_cli("loss._target_=tests.ddp_helpers.NaNOnRank1", "steps=40", "log_every=3",
                      "ckpt_every=2", "eval_every=0", "data.n_train=512",
                      "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
                      "trainer.devices=2", "trainer.strategy=ddp", f"hydra.run.dir={tmp_path}")
    kept = tmp_path / "checkpoints" / "last.ckpt"
    reason = ("train/g_loss became nan or inf at generator step 5; "
              f"the last finite checkpoint is {kept}")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [f"error: training diverged: {reason}"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "diverged" and saved["reason"] == reason
    ckpt = torch.load(kept, weights_only=False)
    assert ckpt["ganzoo"]["g_step"] == 4
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values())


@pytest.mark.slow
def test_image_evaluation_is_sharded_and_matches_one_process(tmp_path, make_cfg):
    """A batch-norm DCGAN under DDP with k = 1 (the generator's graph outlives the critic
    update): ranks end with identical weights and running statistics; FID/KID: the final
    evaluation's generation is split over the 2 ranks and gathered on rank 0 (no hang),
    and scores what one process with the global batch scores."""
    from train import train

    image = ["data=digits", "model=dcgan", "model.generator.width=8",
             "model.discriminator.width=8", "steps=2", "eval_every=0", "ckpt_every=2",
             "metrics.extractor={_target_:tests.tiny_extractor.TinyFeatures}",
             "metrics.fid=true", "metrics.kid=true", "metrics.is=false",
             "metrics.n_samples=120", "metrics.batch_size=50", "metrics.kid_subsets=5",
             "metrics.kid_subset_size=40", f"metrics.cache_dir={tmp_path / 'cache'}",
             "data.num_workers=0"]
    run_dir = tmp_path / "run"
    proc = _train_cli(*image, "data.batch_size=8", "trainer.accelerator=cpu",
                      "trainer.devices=2", "trainer.strategy=ddp",
                      "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}",
                      "+callbacks.dump._target_=tests.ddp_helpers.DumpState",
                      f"+callbacks.dump.dirpath={tmp_path / 'dump'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    r0, r1 = (torch.load(tmp_path / "dump" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert any(k.endswith("running_var") for k in r0["state"])
    for name, value in r0["state"].items():
        assert torch.equal(value, r1["state"][name]), name
    ddp = json.loads((run_dir / "metrics.json").read_text())
    single = train(make_cfg(*image, "data.batch_size=16", f"out_dir={tmp_path / 'single'}",
                            fast=False))
    assert ddp["eval/protocol"]["n_fake"] == single["eval/protocol"]["n_fake"] == 120
    for key in ("eval/fid", "eval/kid"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-3, abs=1e-6), key
