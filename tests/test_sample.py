"""Sampling from checkpoints: the CLI, the Python API, and clear refusals."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.checkpoint import CheckpointError
from ganzoo.sample import main, sample
from train import train

from .conftest import ring_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return ring_checkpoint(tmp_path_factory.mktemp("run"), steps=3)


@pytest.mark.slow
def test_load_generator_needs_no_training_stack(ckpt):
    code = ("import sys, ganzoo; G = ganzoo.load_generator(sys.argv[1]); "
            "from ganzoo.sample import sample; x = sample(G, 5); "
            "assert tuple(x.shape) == (5, 2), x.shape; "
            "assert not any(m.startswith(('lightning', 'pytorch_lightning', 'wandb')) "
            "for m in sys.modules), 'training stack imported'")
    res = subprocess.run([sys.executable, "-c", code, str(ckpt)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_loaded_generator_reproduces_the_trained_one(ckpt):
    G = ganzoo.load_generator(ckpt)
    weights = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, value in G.state_dict().items():
        assert torch.equal(value, weights[f"generator.{name}"]), name
    assert not G.training and G.latent_dim == 4 and G.data_shape == (2,)
    torch.testing.assert_close(sample(G, 7, seed=3), sample(G, 7, seed=3))
    assert not torch.equal(sample(G, 7, seed=3), sample(G, 7, seed=4))


@pytest.mark.parametrize("suffix", [".png", ".npy", ".pt"])
def test_cli_writes_each_format(ckpt, tmp_path, suffix, capsys):
    out = tmp_path / f"s{suffix}"
    assert main([str(ckpt), "--n", "9", "--seed", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 9 samples to {out}"
    expected = sample(ganzoo.load_generator(ckpt), 9, seed=1)
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(out), expected.numpy())
    elif suffix == ".pt":
        torch.testing.assert_close(torch.load(out, weights_only=True), expected)
    else:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refusals_are_one_line(ckpt, tmp_path, capsys):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00" * 100)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(ckpt.read_bytes()[:2000])
    torch.save({"state_dict": {}, "epoch": 3}, tmp_path / "lightning.ckpt")
    cases = [
        ([str(tmp_path / "none.ckpt")], f"error: no checkpoint at {tmp_path / 'none.ckpt'}"),
        ([str(junk)], f"error: {junk} is not a readable checkpoint"),
        ([str(cut)], f"error: {cut} is not a readable checkpoint (truncated"),
        ([str(tmp_path / "lightning.ckpt")],
         f"error: {tmp_path / 'lightning.ckpt'} is not a ganzoo checkpoint"),
        ([str(ckpt), "--out", str(tmp_path / "x.jpg")],
         "error: --out: unsupported file type '.jpg'; use .png, .npy or .pt"),
        ([str(ckpt), "--n", "0"], "error: --n must be >= 1, got 0"),
        ([str(ckpt), "--class", "3"], "error: --class: this generator is not class-conditional"),
    ]
    for args, start in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(start), (args, err)


def test_other_architecture_is_refused(ckpt, tmp_path):
    data = torch.load(ckpt, weights_only=True)
    data["ganzoo"]["generator"]["hidden_dim"] = 64
    torch.save(data, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="do not fit the generator it describes"):
        ganzoo.load_generator(tmp_path / "other.ckpt")


def test_conditional_checkpoint_samples_the_asked_class(make_cfg, tmp_path, capsys):
    train(make_cfg("data=digits", "model=dcgan", "model.conditional=true", "data.clusters=null",
                   "model.generator.width=8", "model.discriminator.width=8", "steps=2",
                   "data.batch_size=8"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    G = ganzoo.load_generator(ckpt)
    assert G.num_classes == 10
    threes = sample(G, 6, seed=2, labels=torch.full((6,), 3))
    fours = sample(G, 6, seed=2, labels=torch.full((6,), 4))
    assert not torch.equal(threes, fours)
    out = tmp_path / "threes.pt"
    capsys.readouterr()  # the training run's output
    assert main([str(ckpt), "--n", "6", "--seed", "2", "--class", "3", "--out", str(out)]) == 0
    torch.testing.assert_close(torch.load(out, weights_only=True), threes)
    assert capsys.readouterr().out.strip() == f"wrote 6 samples of class 3 to {out}"
    assert main([str(ckpt), "--class", "12"]) == 2
    assert capsys.readouterr().err.strip() == "error: --class must be in [0, 9], got 12"


def test_a_cluster_is_not_called_a_class(make_cfg, tmp_path, capsys):
    train(make_cfg("data=digits", "model=dcgan", "data.clusters=3", "data.n_train=64",
                   "model.generator.width=8", "model.discriminator.width=8", "steps=2",
                   "data.batch_size=8"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    out = tmp_path / "c1.pt"
    capsys.readouterr()
    assert main([str(ckpt), "--n", "4", "--class", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote 4 samples of cluster 1 (k-means cluster of the training images, not a digit "
        f"class) to {out}")


def test_scatter_is_titled_with_the_checkpoint_and_n(ckpt, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    drawn = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig),
                                                                   save(fig, *a, **k)))
    assert main([str(ckpt), "--n", "5", "--out", str(tmp_path / "s.png")]) == 0
    run = ckpt.parent.parent.name
    assert drawn[0].axes[0].get_title() == f"{run}/checkpoints/last.ckpt · 5 samples"
