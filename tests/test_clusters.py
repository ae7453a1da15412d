"""data.clusters: k-means clusters of the training images as the labels of a conditional
model (the digits default), drawn by their shares when sampling."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.config import ConfigError
from ganzoo.data.images import ImageDataModule, cluster_labels
from ganzoo.gan import GAN
from ganzoo.losses import NonSaturating
from ganzoo.sample import main, sample
from train import train

from .conftest import refusal

TINY = ("model.generator.width=8", "model.discriminator.width=8", "steps=2",
        "data.batch_size=8", "data.n_train=64")


def _three_groups() -> tuple[torch.Tensor, list[int]]:
    """10 grey 4x4 images in three unmistakable groups (dark, mid, light) of 5, 3, 2."""
    gen = torch.Generator().manual_seed(0)
    group = [0] * 5 + [1] * 3 + [2] * 2
    base = torch.tensor([10.0, 128.0, 245.0])[group]
    images = (base[:, None, None, None] + torch.randint(-5, 6, (10, 1, 4, 4), generator=gen))
    return images.to(torch.uint8), group


def test_clusters_recover_separated_groups_and_their_shares():
    images, group = _three_groups()
    labels, prior = cluster_labels(images, 3, seed=0)
    # the same partition, whatever the clusters' numbering
    pairs = {(g, int(c)) for g, c in zip(group, labels, strict=True)}
    assert len(pairs) == 3 and len({c for _, c in pairs}) == 3
    share = {c: s for c, s in enumerate(prior.tolist())}
    assert sorted(share[c] for _, c in pairs) == pytest.approx([0.2, 0.3, 0.5])
    assert prior.dtype == torch.float32 and prior.sum().item() == pytest.approx(1.0)


def test_digits_clusters_replace_the_labels_deterministically():
    a = ImageDataModule("digits", [1, 16, 16], n_train=300, clusters=12, seed=4)
    a.setup()
    assert a.labels.shape == (300,) and 0 <= a.labels.min() and a.labels.max() == 11
    torch.testing.assert_close(a.label_prior,
                               torch.bincount(a.labels, minlength=12).float() / 300)
    b = ImageDataModule("digits", [1, 16, 16], n_train=300, clusters=12, seed=4)
    b.setup()
    assert torch.equal(a.labels, b.labels)
    x, y = next(iter(a.train_dataloader()))  # the batches carry the cluster labels
    assert y.max() < 12
    plain = ImageDataModule("digits", [1, 16, 16], n_train=300)
    plain.setup()
    assert plain.label_prior is None and not torch.equal(plain.labels, a.labels)


def test_bad_cluster_counts_are_refused(make_cfg, tmp_path):
    assert refusal(make_cfg("data=digits", "data.clusters=1")) == (
        "data.clusters must be >= 2, got 1")
    assert refusal(make_cfg("data=digits", "data.clusters=many")) == (
        "data.clusters must be an integer, got 'many'")
    with pytest.raises(ConfigError) as err:
        train(make_cfg("data=digits", "data.n_train=8", "data.batch_size=4"))
    assert str(err.value) == "data.clusters=20: more clusters than training images (8)"
    # A class count that disagrees with the labels is refused before any data is read.
    five = ("model.generator.num_classes=5", "model.discriminator.num_classes=5")
    with pytest.raises(ConfigError) as err:
        train(make_cfg("data=digits", *TINY, *five))
    assert str(err.value) == ("model.generator.num_classes: the conditional model has 5 "
                              "classes, the data's labels 20 (data.clusters=20)")
    with pytest.raises(ConfigError) as err:
        train(make_cfg("data=digits", *TINY, *five, "data.clusters=null"))
    assert str(err.value) == ("model.generator.num_classes: the conditional model has 5 "
                              "classes, the data's labels 10 (data.num_classes=10)")


def test_clusters_need_the_images_in_memory(tmp_path):
    for i in range(4):
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(tmp_path / f"{i}.png")
    dm = ImageDataModule("imagefolder", [3, 8, 8], root=str(tmp_path), on_device=False,
                         num_workers=0, clusters=2)
    with pytest.raises(ConfigError) as err:
        dm.setup()
    assert str(err.value) == ("data.clusters needs the images in memory: set "
                              "data.on_device=true for imagefolder")
    dm = ImageDataModule("imagefolder", [3, 8, 8], root=str(tmp_path), on_device=True,
                         num_workers=0, clusters=2)
    dm.setup()
    assert sorted(torch.bincount(dm.labels).tolist()) == [2, 2]  # dark pair, light pair


@pytest.mark.slow
def test_digits_default_trains_on_clusters_and_samples_by_their_shares(make_cfg, tmp_path,
                                                                       capsys):
    cfg = make_cfg("data=digits", *TINY, "data.clusters=5")
    assert cfg.model.conditional is True
    metrics = train(cfg)
    assert metrics["status"] == "completed" and metrics["clusters"] == 5
    ckpt_path = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    dm = ImageDataModule("digits", [1, 16, 16], n_train=64, clusters=5, seed=0)
    dm.setup()  # the run's clusters: the same images, seed and k
    assert ckpt["ganzoo"]["label_prior"] == dm.label_prior.tolist()

    G = ganzoo.load_generator(ckpt_path)
    assert G.num_classes == 5 and torch.equal(G.label_prior, dm.label_prior)
    # labels drawn by the shares: a prior on one cluster gives exactly that cluster
    G.label_prior = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0])
    torch.testing.assert_close(sample(G, 6, seed=2),
                               sample(G, 6, seed=2, labels=torch.full((6,), 3)))
    out = tmp_path / "s.pt"
    assert main([str(ckpt_path), "--n", "6", "--out", str(out)]) == 0
    assert torch.load(out, weights_only=True).shape == (6, 1, 16, 16)

    # the training module draws its fake labels from the shares too, and generate's
    # default labels come from their own stream: the same z as with labels given
    module = GAN(G, torch.nn.Linear(1, 1), NonSaturating(), None, None,
                 latent_dim=G.latent_dim, lr_decay="none")
    module.label_prior = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])
    assert module.sample_labels(50).tolist() == [1] * 50
    torch.testing.assert_close(module.generate(4, seed=7),
                               module.generate(4, seed=7, labels=torch.ones(4).long()))


def test_an_unconditional_model_ignores_the_clusters(make_cfg, tmp_path):
    metrics = train(make_cfg("data=digits", *TINY, "model.conditional=false"))
    assert metrics["status"] == "completed" and "clusters" not in metrics
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu",
                      weights_only=True)
    assert "label_prior" not in ckpt["ganzoo"]


@pytest.mark.parametrize("model", ["dcgan", "resnet"])
def test_model_class_count_follows_the_clusters_else_the_dataset(make_cfg, model):
    def classes(*overrides):
        cfg = make_cfg("data=digits", f"model={model}", *overrides)
        return cfg.model.generator.num_classes, cfg.model.discriminator.num_classes

    assert classes() == (20, 20)  # the digits default: 20 k-means clusters
    assert classes("data.clusters=7") == (7, 7)
    assert classes("data.clusters=null") == (10, 10)  # the digit labels themselves
    assert make_cfg("data=cifar10", f"model={model}").model.generator.num_classes == 10
