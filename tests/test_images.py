"""Image datamodules on tiny archives in the real on-disk formats, built in tmp_path.

Nothing is downloaded: CIFAR pickle batches, MNIST idx.gz files, CelebA's folder and
image folders are written here and read by the same code users run. torchvision checks
CIFAR's and CelebA's files by MD5; only that check is bypassed for fabricated files.
"""

import gzip
import logging
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from ganzoo.config import ConfigError
from ganzoo.data.images import DeviceBatches, ImageDataModule
from train import train

from .conftest import group_options, slow_except, training_figures


def _skip_md5(monkeypatch, module):
    """Fabricated files have other checksums: check that they exist, not their MD5."""
    check = torchvision.datasets.utils.check_integrity
    monkeypatch.setattr(module, "check_integrity", lambda fpath, md5=None: check(fpath))


def _cifar(root, which="cifar10", per_batch=6):
    rng = np.random.default_rng(0)
    if which == "cifar10":
        folder, files, key = root / "cifar-10-batches-py", [
            *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"], "labels"
        meta = ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder, files, key = root / "cifar-100-python", ["train", "test"], "fine_labels"
        meta = ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    folder.mkdir(parents=True)
    n_classes = 10 if which == "cifar10" else 100
    written = {}
    for name in files:
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, n_classes, per_batch).tolist()
        written[name] = (data, labels)
        (folder / name).write_bytes(pickle.dumps({"data": data, key: labels}))
    (folder / meta[0]).write_bytes(pickle.dumps(meta[1]))
    return written


def _idx(path, array):
    """idx format (LeCun): magic 0x0000080<ndim>, big-endian dims, then uint8 data."""
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def _mnist(root, folder="MNIST", n=12):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):  # image i: a bar at row i, brightness 20 i: every image unique
        images[i, i, :] = 20 * i + 5
    labels = (np.arange(n) % 10).astype(np.uint8)
    _idx(raw / "train-images-idx3-ubyte.gz", images)
    _idx(raw / "train-labels-idx1-ubyte.gz", labels)
    _idx(raw / "t10k-images-idx3-ubyte.gz", images[:2])
    _idx(raw / "t10k-labels-idx1-ubyte.gz", labels[:2])
    return images, labels


def _image_folder(root):
    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (20, 24), colour).save(root / cls / f"{i}.png")
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "dogs" / "notes.txt").write_text("not an image")


def _batch(dm):
    batch = next(iter(dm.train_dataloader()))
    return dm.on_after_batch_transfer(batch, 0)


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
def test_cifar_pickle_batches(tmp_path, monkeypatch, which):
    _skip_md5(monkeypatch, torchvision.datasets.cifar)
    written = _cifar(tmp_path, which)
    dm = ImageDataModule(which, [3, 32, 32], root=str(tmp_path), batch_size=4)
    dm.setup()
    train_files = [k for k in written if k not in ("test_batch", "test")]
    data = np.concatenate([written[k][0] for k in train_files])
    labels = sum((written[k][1] for k in train_files), [])
    assert dm.images.shape == (len(data), 3, 32, 32) and dm.images.dtype == torch.uint8
    # CIFAR rows are the R, G and B planes, each row-major 32x32
    assert torch.equal(dm.images, torch.from_numpy(data).view(-1, 3, 32, 32))
    assert dm.labels.tolist() == labels
    x, y = _batch(dm)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (4,)
    assert x.min() >= -1 and x.max() <= 1


def test_mnist_idx_gz_files_and_resize(tmp_path):
    images, labels = _mnist(tmp_path)
    dm = ImageDataModule("mnist", [1, 28, 28], root=str(tmp_path))
    dm.setup()
    assert torch.equal(dm.images[:, 0], torch.from_numpy(images))
    assert dm.labels.tolist() == labels.tolist()
    dm32 = ImageDataModule("mnist", [1, 32, 32], root=str(tmp_path), n_train=5)
    dm32.setup()
    assert dm32.images.shape == (5, 1, 32, 32)
    torch.testing.assert_close(dm32.images.float().mean(dim=(1, 2, 3)),
                               dm.images[:5].float().mean(dim=(1, 2, 3)) * 28**2 / 32**2,
                               atol=1.0, rtol=0.05)  # resizing keeps each image's ink


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    images, _ = _mnist(tmp_path, folder="FashionMNIST")
    dm = ImageDataModule("fashion_mnist", [1, 28, 28], root=str(tmp_path))
    dm.setup()
    assert torch.equal(dm.images[:, 0], torch.from_numpy(images))


def test_stacked_mnist_channels_are_the_digits_of_the_label(tmp_path):
    images, labels = _mnist(tmp_path)
    dm = ImageDataModule("stacked_mnist", [3, 28, 28], root=str(tmp_path), n_train=40)
    dm.setup()
    assert dm.images.shape == (40, 3, 28, 28)
    by_image = {images[i].tobytes(): int(labels[i]) for i in range(len(images))}
    for x, y in zip(dm.images, dm.labels.tolist(), strict=True):
        digits = [by_image[x[c].numpy().tobytes()] for c in range(3)]
        assert y == 100 * digits[0] + 10 * digits[1] + digits[2]
    assert len(set(dm.labels.tolist())) > 30  # the channels are drawn independently


def test_digits_are_bundled(tmp_path):
    dm = ImageDataModule("digits", [1, 16, 16], root=str(tmp_path / "nowhere"))
    dm.setup()
    assert dm.images.shape == (1797, 1, 16, 16)
    assert sorted(set(dm.labels.tolist())) == list(range(10))
    assert dm.images.max() > 200 and dm.images.min() == 0


def _celeba(root, monkeypatch):
    _skip_md5(monkeypatch, torchvision.datasets.celeba)
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (60 * i, 10, 10)).save(base / "img_align_celeba" / name)
    rows = lambda values: "".join(f"{n} {v}\n" for n, v in zip(names, values, strict=True))  # noqa: E731
    (base / "list_eval_partition.txt").write_text(rows([0, 0, 0, 2]))
    (base / "identity_CelebA.txt").write_text(rows([7, 8, 9, 10]))
    (base / "list_attr_celeba.txt").write_text("4\nSmiling Young\n" + rows(["1 -1"] * 4))
    (base / "list_bbox_celeba.txt").write_text(
        "4\nimage_id x_1 y_1 width height\n" + rows(["1 2 3 4"] * 4))
    (base / "list_landmarks_align_celeba.txt").write_text(
        "4\nlefteye_x lefteye_y\n" + rows(["1 2"] * 4))


def test_celeba_folder(tmp_path, monkeypatch):
    _celeba(tmp_path, monkeypatch)
    dm = ImageDataModule("celeba", [3, 64, 64], root=str(tmp_path), on_device=False,
                         batch_size=3, num_workers=0)
    dm.setup()
    assert len(dm.dataset) == 3  # the training split only
    x, _ = _batch(dm)
    assert x.shape == (3, 3, 64, 64)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "mnist", "fashion_mnist",
                                  "stacked_mnist", "celeba"])
def test_missing_dataset_is_one_message(tmp_path, name):
    shape = [1, 32, 32] if "mnist" in name and name != "stacked_mnist" else [3, 32, 32]
    dm = ImageDataModule(name, shape, root=str(tmp_path))
    with pytest.raises(ConfigError) as err:
        dm.setup()
    msg = str(err.value)
    assert msg.startswith(f"data: {name} not found: expected ")
    assert str(tmp_path) in msg and "data.download=true" in msg and "\n" not in msg


def test_missing_dataset_stops_training_before_it_starts(make_cfg, tmp_path, monkeypatch):
    import ganzoo.eval.images

    def no_inception(*args):  # the data is checked first, in seconds, not after this
        raise AssertionError("the Inception network was loaded before the data was checked")

    monkeypatch.setattr(ganzoo.eval.images, "load_inception", no_inception)
    with pytest.raises(ConfigError) as err:  # train.py prints it as one line, exit 2
        train(make_cfg("data=cifar10", f"data.root={tmp_path}", "metrics.fid=true"))
    assert not (tmp_path / ".hydra").exists() and not (tmp_path / "logs").exists()
    assert str(err.value) == (
        f"data: cifar10 not found: expected data_batch_1..5, test_batch, batches.meta "
        f"in {tmp_path}/cifar-10-batches-py; get them from "
        f"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it there) or "
        f"data.download=true fetches it where the network allows (data.root or GANZOO_DATA "
        f"moves the folder)")


def test_image_folder_skips_bad_files_once(tmp_path, caplog):
    _image_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        dm = ImageDataModule("imagefolder", [3, 16, 16], root=str(tmp_path), on_device=True,
                             num_workers=0)
        dm.setup()
    assert [r.getMessage() for r in caplog.records] == [
        f"data: skipped 2 of 6 files under {tmp_path} that are not readable images "
        f"(e.g. {tmp_path / 'cats' / 'broken.png'})"]
    assert dm.images.shape == (4, 3, 16, 16)
    assert dm.labels.tolist() == [0, 0, 1, 1]  # cats, dogs
    assert dm.images[0, :, 8, 8].tolist() == [255, 0, 0]
    assert dm.images[3, :, 8, 8].tolist() == [0, 0, 255]


def test_image_folder_can_stop_at_a_bad_file(tmp_path):
    _image_folder(tmp_path)
    dm = ImageDataModule("imagefolder", [3, 16, 16], root=str(tmp_path),
                         skip_bad_files=False, num_workers=0)
    with pytest.raises(ConfigError) as err:
        dm.setup()
    assert str(err.value) == (f"data: {tmp_path / 'cats' / 'broken.png'} is not a readable "
                              "image (data.skip_bad_files=true skips such files)")


def test_flat_image_folder_streams_grey(tmp_path):
    for i in range(3):
        Image.new("RGB", (40, 30), (i * 100, i * 100, i * 100)).save(tmp_path / f"{i}.png")
    dm = ImageDataModule("imagefolder", [1, 16, 16], root=str(tmp_path), on_device=False,
                         batch_size=3, num_workers=0)
    dm.setup()
    x, y = _batch(dm)
    assert x.shape == (3, 1, 16, 16) and y.tolist() == [0, 0, 0]
    torch.testing.assert_close(x.mean(dim=(1, 2, 3)).sort().values,
                               torch.tensor([0.0, 100.0, 200.0]) / 127.5 - 1,
                               atol=1.01 / 127.5, rtol=0)  # grey conversion rounds to 1 level


def test_in_memory_batches_are_seekable_and_flip_on_device():
    images = torch.arange(2 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4).repeat(5, 1, 1, 1)
    labels = torch.arange(10)
    stream = DeviceBatches(images, labels, batch_size=8, seed=3, flip=True)
    it = iter(stream)
    first = [next(it) for _ in range(4)]
    stream.seek(2)
    again = next(iter(stream))
    assert torch.equal(again[0], first[2][0]) and torch.equal(again[1], first[2][1])
    x, y = torch.cat([b[0] for b in first]), torch.cat([b[1] for b in first])
    plain, flipped = images[y], images[y].flip(3)
    is_plain = (x == plain).flatten(1).all(1)
    is_flipped = (x == flipped).flatten(1).all(1)
    assert bool((is_plain | is_flipped).all()) and is_plain.any() and is_flipped.any()


def test_unknown_dataset_and_bad_shape_are_refused():
    with pytest.raises(ValueError, match="data.name: unknown image dataset 'svhn'"):
        ImageDataModule("svhn", [3, 32, 32])
    with pytest.raises(ValueError) as err:
        ImageDataModule("cifar10", [3, 32, 16])
    assert str(err.value) == ("data.shape: images are [channels, side, side] with 1 or 3 "
                              "channels, got [3, 32, 16]")


def test_image_data_picks_an_image_model_unless_one_is_given(make_cfg):
    cfg = make_cfg("data=cifar10")
    assert cfg.model.name == "dcgan" and cfg.data.batch_size == 64
    assert cfg.optim.g._target_ == "torch.optim.Adam" and list(cfg.optim.g.betas) == [0.5, 0.999]
    assert cfg.optim.g.lr == cfg.optim.d.lr == 2e-4
    assert make_cfg("data=cifar10", "model=resnet").model.name == "resnet"
    assert make_cfg("model=resnet", "data=cifar10").model.name == "resnet"
    assert make_cfg("data=digits", "model=mlp").model.name == "mlp"
    assert make_cfg("data=ring").model.name == "mlp"
    assert make_cfg().model.name == "mlp"


# --- every image set with every model, every loss on dcgan + digits (F) -------------------

IMAGE_SETS = ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "stacked_mnist",
              "celeba", "imagefolder"]
TINY = {"mlp": ["model.generator.hidden_dim=16", "model.discriminator.hidden_dim=16"],
        "dcgan": ["model.generator.width=4", "model.discriminator.width=4"],
        "resnet": ["model.generator.width=4", "model.discriminator.width=4"]}


def _fabricate(name, root, monkeypatch):
    if name in ("cifar10", "cifar100"):
        _skip_md5(monkeypatch, torchvision.datasets.cifar)
        _cifar(root, name, per_batch=2)
    elif name in ("mnist", "stacked_mnist"):
        _mnist(root)
    elif name == "fashion_mnist":
        _mnist(root, folder="FashionMNIST")
    elif name == "celeba":
        _celeba(root, monkeypatch)
    elif name == "imagefolder":
        for i in range(3):
            Image.new("RGB", (70, 80), (80 * i, 40, 200)).save(root / f"{i}.png")


def _tiny_run(make_cfg, tmp_path, monkeypatch, data, model, *extra):
    root = tmp_path / "data"
    root.mkdir()
    _fabricate(data, root, monkeypatch)
    # digits' default conditions on 20 k-means clusters: 2 for its 8 images here
    few = ["data.clusters=2"] if data == "digits" and not any(
        e.startswith("data.clusters=") for e in extra) else []
    return train(make_cfg(f"data={data}", f"model={model}", f"data.root={root}", "steps=2",
                          "data.batch_size=4", "data.num_workers=0", "data.n_train=8",
                          *TINY[model], *few, *extra))


@pytest.mark.parametrize("data", IMAGE_SETS)
@pytest.mark.parametrize("model", slow_except(["mlp", "dcgan", "resnet"], "dcgan"))
def test_every_model_trains_on_every_image_set(make_cfg, tmp_path, monkeypatch, model, data):
    metrics = _tiny_run(make_cfg, tmp_path, monkeypatch, data, model)
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    side = make_cfg(f"data={data}").data.shape[-1]
    tile = side * max(1, 64 // side)  # upscaled by a whole factor to about 64 px
    with Image.open(tmp_path / "samples.png") as png:
        assert png.size == (2 + 8 * (tile + 2), 2 + 8 * (tile + 2))  # an 8x8 grid


LOSS_FIXES = {"wgan_gp": ["model.discriminator.norm=layer"]}  # no batch norm under a GP


@pytest.mark.parametrize("loss", slow_except(group_options("loss"), "nonsaturating"))
def test_every_loss_trains_dcgan_on_digits(make_cfg, tmp_path, monkeypatch, loss):
    metrics = _tiny_run(make_cfg, tmp_path, monkeypatch, "digits", "dcgan", f"loss={loss}",
                        *LOSS_FIXES.get(loss, []))
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    keys = training_figures(make_cfg(f"loss={loss}"))
    assert {k for k in metrics if k.startswith(("train/d_loss", "train/g_loss",
                                                "train/divergence"))} == set(keys)
    for key in keys:
        assert np.isfinite(metrics[key]), key


def test_gradient_penalty_with_batch_norm_critic_stops_before_training(make_cfg):
    with pytest.raises(ConfigError, match=r"^model.discriminator: batch norm in a critic "):
        train(make_cfg("data=digits", "loss=wgan_gp", *TINY["dcgan"]))
    with pytest.raises(ConfigError, match=r"^model.discriminator: .*\(penalty=R1\)"):
        train(make_cfg("data=digits", "penalty=r1", "penalty.weight=1.0", *TINY["dcgan"]))
    metrics = train(make_cfg("data=digits", "penalty=r1", "penalty.weight=1.0",
                             "model.discriminator.norm=none",
                             "model.spectral_norm=true", "data.n_train=8", "data.clusters=2",
                             *TINY["dcgan"]))
    assert metrics["status"] == "completed"


def test_the_r3gan_experiment_trains_digits_with_no_other_flag(make_cfg):
    # The recipe brings the critic a penalty can work with (layer norm on dcgan); a norm
    # the user names still wins, and the bare penalty on dcgan is still refused (above).
    cfg = make_cfg("experiment=r3gan", "data=digits")
    assert (cfg.model.name, cfg.model.discriminator.norm) == ("dcgan", "layer")
    assert cfg.penalty.weight == 0.1
    assert make_cfg("experiment=r3gan", "data=digits",
                    "model.discriminator.norm=none").model.discriminator.norm == "none"
    assert "norm" not in make_cfg("experiment=r3gan").model.discriminator  # the toy MLP
    metrics = train(make_cfg("experiment=r3gan", "data=digits", "data.n_train=8",
                             "data.clusters=2", *TINY["dcgan"]))
    assert metrics["status"] == "completed" and metrics["steps"] == 6
    assert metrics["train/penalty"] > 0


@pytest.mark.parametrize("model", slow_except(["dcgan", "resnet"], "dcgan"))
def test_conditional_models_train_and_sample_given_classes(make_cfg, tmp_path, monkeypatch,
                                                           model):
    import ganzoo.gan

    created, init = [], ganzoo.gan.GAN.__init__

    def capture(self, *args, **kwargs):
        init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(ganzoo.gan.GAN, "__init__", capture)
    metrics = _tiny_run(make_cfg, tmp_path, monkeypatch, "digits", model,
                        "model.conditional=true", "data.clusters=null")  # the digit labels
    assert metrics["status"] == "completed"
    (module,) = created
    assert module.num_classes == 10
    module.eval()  # every generator copy (raw, EMA) uses its running statistics
    from ganzoo.nets.layers import ConditionalBatchNorm2d

    with torch.no_grad():  # classes far apart, so that a label's effect is unmistakable
        for m in module.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.embed.weight.normal_()
    a = module.generate(6, seed=1, labels=torch.tensor([3, 3, 3, 7, 7, 7]))
    b = module.generate(6, seed=1, labels=torch.tensor([3, 3, 3, 3, 3, 3]))
    assert torch.equal(a[:3], b[:3]) and not torch.allclose(a[3:], b[3:])
    with pytest.raises(ValueError, match="labels: need 6 labels"):
        module.generate(6, labels=torch.tensor([1, 2]))


def test_seek_before_setup_continues_the_stream():
    dm = ImageDataModule("digits", [1, 16, 16], batch_size=5)
    dm.setup()
    it = iter(dm.train_dataloader())
    third = [next(it) for _ in range(3)][2]
    resumed = ImageDataModule("digits", [1, 16, 16], batch_size=5)
    resumed.seek(2)  # a resumed run seeks before or after setup
    resumed.setup()
    again = next(iter(resumed.train_dataloader()))
    assert torch.equal(again[0], third[0]) and torch.equal(again[1], third[1])


def test_the_unconditional_digits_experiment_trains_with_its_prior(make_cfg, tmp_path):
    # No labels and no clusters: the generator's only structure is the latent mixture.
    cfg = make_cfg("experiment=digits_unconditional")
    assert (cfg.data.name, cfg.model.conditional, cfg.data.clusters) == ("digits", False, None)
    assert (cfg.prior._target_, cfg.prior.components) == ("ganzoo.priors.GaussianMixture", 20)
    assert list(cfg.augment.policy) == ["translation"]
    assert cfg.optim.g.lr == cfg.optim.d.lr == 8e-4
    metrics = train(make_cfg("experiment=digits_unconditional", "data.n_train=8",
                             *TINY["dcgan"]))
    assert metrics["status"] == "completed" and metrics["steps"] == 6
    from ganzoo.sample import load_generator

    G = load_generator(tmp_path / "checkpoints" / "last.ckpt")
    assert G.num_classes is None and G.prior.components == 20
