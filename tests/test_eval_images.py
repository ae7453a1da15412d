"""FID, KID and IS through torchmetrics: tiny extractor end to end, the real-feature
cache, the Inception loader offline, and the numbers against torchmetrics used directly."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from omegaconf import OmegaConf
from torchmetrics.image import FrechetInceptionDistance, KernelInceptionDistance

from ganzoo.config import ConfigError
from ganzoo.data.images import ImageDataModule
from ganzoo.eval.images import image_metrics
from ganzoo.metrics.images import to_uint8_rgb
from tests.conftest import CONF
from tests.tiny_extractor import TinyFeatures
from train import train

TINY = "metrics.extractor={_target_:tests.tiny_extractor.TinyFeatures}"
ON = ("metrics.fid=true", "metrics.kid=true", "metrics.is=true")


def _metrics_cfg(**over):
    base = OmegaConf.load(CONF / "metrics" / "default.yaml")
    base.cache_dir = None
    base.merge_with(over)
    return base


class _FakeGAN:
    """What ImageMetrics needs of a GAN: generate() from fixed noise, a device, a rank."""

    device = torch.device("cpu")
    global_rank = 0
    num_classes = 0

    def generate(self, n, seed=0, labels=None):
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(n, 1, 16, 16, generator=gen) * 1.6 - 0.9  # (n, 1, 16, 16)


# torchmetrics warns on constructing KID that it keeps all features; this test builds one.
@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save:UserWarning")
def test_scores_equal_torchmetrics_fed_the_images_directly(tmp_path):
    """Extracting features once and handing them to the metrics gives what torchmetrics
    computes when it runs the same extractor on the uint8 images itself."""
    dm = ImageDataModule("digits", [1, 16, 16], batch_size=8)
    cfg = _metrics_cfg(n_samples=120, batch_size=50, kid_subsets=5, kid_subset_size=40,
                       extractor={"_target_": "tests.tiny_extractor.TinyFeatures"})
    metrics = image_metrics(cfg, dm)
    rng = torch.get_rng_state()
    figures = metrics(_FakeGAN())
    torch.testing.assert_close(torch.get_rng_state(), rng)  # the training stream is untouched

    real = torch.cat(list(dm.real_images(120, 50)))  # (120, 1, 16, 16) uint8
    assert real.dtype == torch.uint8 and real.shape == (120, 1, 16, 16)
    fake = torch.cat([to_uint8_rgb(_FakeGAN().generate(n, seed=i))
                      for i, n in enumerate((50, 50, 20))])
    fid = FrechetInceptionDistance(TinyFeatures())
    fid.update(to_uint8_rgb(real), real=True)
    fid.update(fake, real=False)
    torch.testing.assert_close(figures["eval/fid"], float(fid.compute()), rtol=1e-5, atol=1e-6)
    extractor = TinyFeatures()  # built before seeding: nn.Linear's init draws numbers
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # metrics.seed: KID's subsets are drawn after it
        kid = KernelInceptionDistance(extractor, subsets=5, subset_size=40)
        kid.update(to_uint8_rgb(real), real=True)
        kid.update(fake, real=False)
        mean, std = kid.compute()
    torch.testing.assert_close(figures["eval/kid"], float(mean), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(figures["eval/kid_std"], float(std), rtol=1e-5, atol=1e-7)
    assert figures["eval/fid"] > 0.01  # uniform noise is far from digits
    assert metrics.protocol["n_real"] == 120 and metrics.protocol["n_fake"] == 120


def test_real_images_are_the_same_fixed_subset(tmp_path):
    dm = ImageDataModule("digits", [1, 16, 16], batch_size=8, seed=3)
    a = torch.cat(list(dm.real_images(100, 30)))
    b = torch.cat(list(ImageDataModule("digits", [1, 16, 16], seed=9).real_images(100, 64)))
    torch.testing.assert_close(a, b)  # independent of the run seed and of the batch size
    assert len(torch.cat(list(dm.real_images(5000, 1000)))) == 1797  # at most the set


def test_real_images_of_a_streamed_folder(tmp_path):
    from PIL import Image

    for i in range(5):
        Image.new("RGB", (20, 20), (40 * i, 0, 255 - 40 * i)).save(tmp_path / f"{i}.png")
    dm = ImageDataModule("imagefolder", [3, 16, 16], root=str(tmp_path), on_device=False,
                         num_workers=0)
    batches = list(dm.real_images(4, 3))
    assert [tuple(b.shape) for b in batches] == [(3, 3, 16, 16), (1, 3, 16, 16)]
    assert all(b.dtype == torch.uint8 for b in batches)
    reds = torch.cat(batches)[:, 0, 0, 0].tolist()  # each file is one flat colour
    assert len(set(reds)) == 4 and set(reds) <= {0, 40, 80, 120, 160}  # 4 distinct files


@pytest.mark.slow
def test_training_logs_fid_kid_is_and_second_run_reads_the_cache(make_cfg, tmp_path,
                                                                  monkeypatch, capsys):
    cache = tmp_path / "cache"
    common = ("data=digits", "steps=4", "eval_every=2", "log_every=2", TINY, *ON,
              "metrics.n_samples=64", "metrics.batch_size=32", f"metrics.cache_dir={cache}")
    first = train(make_cfg(*common))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("eval/fid", "eval/kid", "eval/kid_std", "eval/is", "eval/is_std"):
        assert math.isfinite(saved[key]) and saved[key] == first[key], key
    protocol = saved["eval/protocol"]
    files = list(cache.glob("*.pt"))
    assert [f.name.startswith("real-digits-16px-train-n64-TinyFeatures-") for f in files] == [True]
    assert protocol["real_statistics"] == f"computed, cached in {files[0]}"
    assert (protocol["n_real"], protocol["n_fake"]) == (64, 64)
    assert protocol["extractor"].startswith("tests.tiny_extractor.TinyFeatures@")
    assert protocol["resize"] == "none (the extractor's own)"
    rows = (tmp_path / "logs" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    fid_at = {int(float(r.split(",")[header.index("step")])) for r in rows[1:]
              if r.split(",")[header.index("eval/fid")]}
    assert fid_at == {2, 4}  # every eval_every generator steps, the last one not twice
    out = capsys.readouterr().out
    assert f"  FID              {first['eval/fid']:.2f}\n" in out
    assert "  measured on      64 generated vs 64 real images, tests.tiny_extractor" in out

    # Same dataset, sample count and extractor: the real features come from the cache.
    def no_real_images(self, *args, **kwargs):
        raise AssertionError("real images were read although the cache holds them")

    monkeypatch.setattr(ImageDataModule, "real_images", no_real_images)
    run2 = tmp_path / "run2"
    second = train(make_cfg(*common, f"out_dir={run2}"))
    protocol2 = json.loads((run2 / "metrics.json").read_text())["eval/protocol"]
    assert protocol2["real_statistics"] == f"read from {files[0]}"
    # Same seed, same training: the cached features give exactly the computed scores.
    assert second["eval/fid"] == first["eval/fid"]
    assert second["eval/kid"] == first["eval/kid"]


def test_missing_inception_weights_offline_turn_metrics_off(make_cfg, tmp_path, caplog,
                                                            monkeypatch):
    """No weights and no network (conftest refuses downloads): one message, and the run
    completes without FID/KID/IS."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached copy either
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        metrics = train(make_cfg("data=digits", "steps=2", *ON, "metrics.n_samples=16"))
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    assert not any(k in metrics for k in ("eval/fid", "eval/kid", "eval/is"))
    messages = [r.getMessage() for r in caplog.records if "Inception" in r.getMessage()]
    assert len(messages) == 1
    msg = messages[0]
    assert msg.startswith("metrics: FID, KID and IS are off for this run")
    assert "weights-inception-2015-12-05-6726825d.pth" in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert "metrics.inception_weights=" in msg and "\n" not in msg
    assert (tmp_path / "samples.png").is_file()


@pytest.mark.slow
def test_inception_weights_from_a_local_file(tmp_path, monkeypatch):
    """metrics.inception_weights loads a local copy (here: random weights of the right
    architecture) and FID/KID use its 2048 pool features, IS its 1008 logits."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:  # build the architecture without any weights
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), weights)

    dm = ImageDataModule("digits", [1, 16, 16])
    cfg = _metrics_cfg(n_samples=4, batch_size=4, kid_subsets=2, is_splits=2,
                       inception_weights=str(weights), resize="tf1")
    metrics = image_metrics(cfg, dm)
    feats, logits = metrics._extract([torch.zeros(2, 1, 16, 16, dtype=torch.uint8)],
                                     torch.device("cpu"))
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    figures = metrics(_FakeGAN())
    assert sorted(figures) == ["eval/fid", "eval/is", "eval/is_std", "eval/kid", "eval/kid_std"]
    assert all(math.isfinite(v) for v in figures.values())
    assert metrics.protocol["extractor"] == "inception-v3-compat"
    assert metrics.protocol["resize"].startswith("bilinear as TensorFlow 1 to 299x299")


@pytest.mark.parametrize(("over", "message"), [
    ({"inception_weights": "/nonexistent/w.pth"},
     "metrics.inception_weights: no file /nonexistent/w.pth"),
    ({"n_samples": 1}, "metrics.n_samples must be an integer >= 2, got 1"),
    ({"resize": "nearest"}, "metrics.resize must be one of antialias, tf1, got 'nearest'"),
    ({"extractor": {"_target_": "torch.optim.SGD"}}, "metrics.extractor: "),
])
def test_bad_metrics_config_is_one_line(over, message):
    dm = ImageDataModule("digits", [1, 16, 16])
    with pytest.raises(ConfigError) as err:
        image_metrics(_metrics_cfg(**over), dm)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_all_metrics_off_builds_nothing():
    dm = ImageDataModule("digits", [1, 16, 16])
    assert image_metrics(_metrics_cfg(fid=False, kid=False, **{"is": False}), dm) is None


def test_too_few_images_for_kid_and_fid_are_said_once(caplog):
    """With no more images than a KID subset, every subset holds them all (std about 0):
    KID then uses half of them, and says so once; FID from fewer images than feature
    dimensions (6 < the tiny extractor's 8) is flagged once too."""
    dm = ImageDataModule("digits", [1, 16, 16], batch_size=8)
    cfg = _metrics_cfg(n_samples=6, batch_size=6, kid_subsets=5, kid_subset_size=1000,
                       extractor={"_target_": "tests.tiny_extractor.TinyFeatures"})
    metrics = image_metrics(cfg, dm)
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        first = metrics(_FakeGAN())
        metrics(_FakeGAN())
    assert [r.getMessage() for r in caplog.records] == [
        "eval/fid from 6 images of 8-dimensional features: the covariances are "
        "rank-deficient and FID is biased high; raise metrics.n_samples to at least 8 "
        "(10000 is the standard protocol)",
        "metrics.kid_subset_size=1000 is not below the 6 images compared: every subset "
        "would hold them all and eval/kid_std read about 0; KID uses subsets of 3 (raise "
        "metrics.n_samples, or lower metrics.kid_subset_size)"]
    assert first["eval/kid_std"] > 0
