"""A checkpoint is data: sampling builds only ganzoo's generators from it, with plain
arguments, and the sample CLI refuses bad input in one line before it touches the disk."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import hydra.utils
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import ganzoo
from ganzoo.checkpoint import CheckpointError, read_checkpoint
from ganzoo.nets import GENERATORS
from ganzoo.sample import main, sample

from .conftest import CONF, ROOT, ring_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return ring_checkpoint(tmp_path_factory.mktemp("run"), steps=2)


def _with_generator(ckpt: Path, node: dict, path: Path) -> Path:
    """``ckpt`` with its ganzoo.generator node replaced by ``node``, saved at ``path``."""
    data = torch.load(ckpt, weights_only=True)
    data["ganzoo"]["generator"] = node
    torch.save(data, path)
    return path


def _payloads(victim: Path, new: Path) -> dict[str, dict]:
    """Generator nodes that, given to hydra.utils.instantiate, empty ``victim`` or create
    ``new``."""
    return {"open": {"_target_": "builtins.open", "_args_": [str(victim), "w"]},
            "touch": {"_target_": "pathlib.Path.touch", "_args_": [str(new)]},
            "torch.save": {"_target_": "torch.save", "_args_": [[1], str(new)]}}


def _victims(tmp_path: Path) -> tuple[Path, Path]:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return victim, tmp_path / "created"


def test_the_payloads_run_code_under_hydra(tmp_path):
    """What the refusals below guard against: Hydra does run each payload."""
    victim, new = _victims(tmp_path)
    for name, node in _payloads(victim, new).items():
        result = hydra.utils.instantiate(node)
        if name == "open":
            result.close()
            assert victim.read_text() == ""
        else:
            assert new.exists(), name
            new.unlink()


@pytest.mark.parametrize("payload", ["open", "touch", "torch.save"])
def test_a_checkpoint_cannot_choose_the_generator_class(ckpt, tmp_path, payload, capsys):
    victim, new = _victims(tmp_path)
    node = _payloads(victim, new)[payload]
    bad = _with_generator(ckpt, node, tmp_path / "bad.ckpt")
    message = (f"{bad}: refusing to build {node['_target_']!r}: sampling builds only the "
               "generators of ganzoo.nets.GENERATORS")
    with pytest.raises(CheckpointError) as err:
        ganzoo.load_generator(bad)
    assert str(err.value) == message
    out = tmp_path / "grid.png"
    assert main([str(bad), "--n", "4", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert victim.read_text() == "precious\n" and not new.exists() and not out.exists()


def test_the_cli_refuses_a_payload_in_one_line_and_exit_2(ckpt, tmp_path):
    victim, new = _victims(tmp_path)
    node = _payloads(victim, new)["open"]
    bad = _with_generator(ckpt, node, tmp_path / "bad.ckpt")
    res = subprocess.run([sys.executable, "-m", "ganzoo.sample", str(bad), "--out",
                          str(tmp_path / "grid.png")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"error: {bad}: refusing to build 'builtins.open': sampling builds only the "
        "generators of ganzoo.nets.GENERATORS"]
    assert victim.read_text() == "precious\n" and not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("key, value, why", [
    ("activation", {"_target_": "builtins.open", "_args_": ["VICTIM", "w"]},
     "generator.activation asks to build 'builtins.open'"),
    ("hidden_dim", [1, {"_target_": "pathlib.Path.touch"}],
     "generator.hidden_dim[1] asks to build 'pathlib.Path.touch'"),
    ("_partial_", True, "generator has the key '_partial_'"),
    ("_args_", ["VICTIM", "w"], "generator has the key '_args_'"),
    ("_recursive_", False, "generator has the key '_recursive_'"),
    ("_convert_", "all", "generator has the key '_convert_'"),
    ("activation", {"_kind_": "x"}, "generator.activation has the key '_kind_'"),
    ("hidden_dim", torch.tensor(3), "generator.hidden_dim is a Tensor"),
])
def test_generator_arguments_must_be_plain_data(ckpt, tmp_path, key, value, why, capsys):
    victim, _ = _victims(tmp_path)
    node = torch.load(ckpt, weights_only=True)["ganzoo"]["generator"]
    assert node["_target_"] == "ganzoo.nets.mlp.MLPGenerator"
    value = copy.deepcopy(value)
    if isinstance(value, dict) and "_args_" in value:
        value["_args_"][0] = str(victim)
    bad = _with_generator(ckpt, {**node, key: value}, tmp_path / "bad.ckpt")
    message = (f"{bad}: refusing to build ganzoo.nets.mlp.MLPGenerator: {why}; generator "
               "arguments must be plain data")
    with pytest.raises(CheckpointError) as err:
        ganzoo.load_generator(bad)
    assert str(err.value) == message
    assert main([str(bad), "--out", str(tmp_path / "s.png")]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert victim.read_text() == "precious\n"


def test_a_legit_checkpoint_still_samples(ckpt, tmp_path, capsys):
    G = ganzoo.load_generator(ckpt)
    assert type(G).__name__ == "MLPGenerator" and G.latent_dim == 4
    out = tmp_path / "deep" / "s.pt"
    assert main([str(ckpt), "--n", "5", "--seed", "2", "--out", str(out)]) == 0
    torch.testing.assert_close(torch.load(out, weights_only=True), sample(G, 5, seed=2))
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.pt"]  # no temp file left
    assert capsys.readouterr().err == ""


def test_every_configured_generator_is_allowed():
    """A model config whose generator sampling would refuse fails here: add its class to
    ganzoo.nets.GENERATORS (docs/extending.md, "An architecture")."""
    targets = {OmegaConf.select(OmegaConf.load(p), "model.generator._target_")
               for p in (CONF / "model").glob("*.yaml")} - {None}
    assert targets and targets <= set(GENERATORS), targets - set(GENERATORS)
    for target in GENERATORS:
        cls = hydra.utils.get_class(target)
        assert issubclass(cls, nn.Module) and cls.__module__.startswith("ganzoo.nets."), target


# The CLI's refusals: one line, exit 2, and nothing read, sampled or created before them.

def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr()
    assert err.out == "" and err.err.count("\n") == 1 and err.err.startswith("error: "), err
    return err.err.strip()


def test_arguments_are_checked_before_the_checkpoint_is_read(tmp_path, capsys):
    missing = str(tmp_path / "none.ckpt")  # never read: each argument is refused first
    made = tmp_path / "made" / "sub"
    cases = [
        (["--n", "0", "--out", str(made / "s.png")], "error: --n must be >= 1, got 0"),
        (["--out", str(made / "s.jpg")],
         "error: --out: unsupported file type '.jpg'; use .png, .npy or .pt"),
        (["--out", str(made / "s")], "error: --out: unsupported file type ''; use .png, "
                                     ".npy or .pt"),
        (["--device", "gpu0", "--out", str(made / "s.png")],
         "error: --device gpu0 is not a torch device (e.g. cpu, cuda, cuda:1, mps)"),
    ]
    for args, message in cases:
        assert _refused([missing, *args], capsys) == message
    (tmp_path / "dir.png").mkdir()
    assert _refused([missing, "--out", str(tmp_path / "dir.png")], capsys) == \
        f"error: --out: {tmp_path / 'dir.png'} is a directory"
    assert not (tmp_path / "made").exists()


def test_an_absent_device_is_refused(tmp_path, capsys):
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert _refused([str(tmp_path / "none.ckpt"), "--device", "cuda:99", "--out",
                     str(tmp_path / "made" / "s.png")], capsys) == \
        f"error: --device cuda:99 is not available on this machine ({count} cuda " \
        f"device{'' if count == 1 else 's'})"
    assert not (tmp_path / "made").exists()


def test_an_unwritable_output_is_refused_before_sampling(ckpt, tmp_path, capsys):
    blocker = tmp_path / "somefile.txt"  # a file as a parent folder: unwritable even to root
    blocker.write_text("x")
    out = blocker / "sub" / "out.png"
    assert _refused([str(ckpt), "--out", str(out)], capsys) == \
        f"error: --out: cannot write {out} ({blocker} is not a directory)"
    assert blocker.read_text() == "x"
    if os.geteuid() != 0:  # root writes through a read-only mode
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            assert _refused([str(ckpt), "--out", str(locked / "new" / "s.png")], capsys) == \
                f"error: --out: cannot write {locked / 'new' / 's.png'} ({locked} is not " \
                "writable)"
        finally:
            locked.chmod(0o700)
        assert list(locked.iterdir()) == []


def test_foreign_and_junk_checkpoints_create_nothing(tmp_path, capsys):
    made = tmp_path / "made"
    lightning = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 0}, lightning)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(bytes(range(256)) * 8)  # bytes that are no PyTorch file
    assert _refused([str(lightning), "--out", str(made / "s.png")], capsys) == \
        f"error: {lightning} is not a ganzoo checkpoint"
    assert _refused([str(junk), "--out", str(made / "s.png")], capsys).startswith(
        f"error: {junk} is not a readable checkpoint (truncated or not a PyTorch file: ")
    assert _refused([str(tmp_path / "none.ckpt"), "--out", str(made / "s.png")], capsys) == \
        f"error: no checkpoint at {tmp_path / 'none.ckpt'}"
    assert not made.exists()


def test_a_failed_write_leaves_no_partial_file(ckpt, tmp_path, capsys, monkeypatch):
    import ganzoo.sample

    out = tmp_path / "s.npy"
    out.write_bytes(b"old samples")

    def half_written(x, suffix, f, title=""):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ganzoo.sample, "_write", half_written)
    assert _refused([str(ckpt), "--out", str(out)], capsys) == \
        f"error: --out: cannot write {out} (No space left on device)"
    assert out.read_bytes() == b"old samples"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy"]


def test_lightning_load_from_checkpoint_points_to_what_works(ckpt, make_cfg):
    ring_ckpt = ckpt
    from hydra.utils import instantiate

    from ganzoo.gan import GAN

    with pytest.raises(TypeError) as err:
        GAN.load_from_checkpoint(ring_ckpt)
    assert str(err.value) == (
        "GAN.load_from_checkpoint needs generator, discriminator, loss, optimizer_g, "
        "optimizer_d, latent_dim as keyword arguments: a ganzoo checkpoint keeps weights, "
        f"not the Hydra config that builds the module. To sample: "
        f"ganzoo.load_generator({str(ring_ckpt)!r}); to train on: uv run train.py <its "
        f"overrides> ckpt_path={ring_ckpt}")
    # Given what builds it, Lightning's loader restores the weights.
    cfg = make_cfg().model
    parts = {k: instantiate(cfg[k]) for k in ("generator", "discriminator", "loss")}
    parts |= {k: instantiate(cfg[k]) for k in ("optimizer_g", "optimizer_d")}
    module = GAN.load_from_checkpoint(ring_ckpt, latent_dim=cfg.latent_dim, **parts)
    saved = read_checkpoint(ring_ckpt)["state_dict"]
    assert all(torch.equal(module.state_dict()[k], v) for k, v in saved.items())
