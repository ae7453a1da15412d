"""Behaviour that no other test pins down exactly: the linear learning-rate decay as the
logs record it, ``theory.empirical_w1`` on point sets whose optimum is known, and the
chunking of ``GAN.generate``.

Everything here goes through public surfaces (``train(cfg)``, its CSV log and
metrics.json, Lightning callbacks named in the config, ``GAN.generate``) so that it does
not depend on how the GAN module is constructed.
"""

import csv
import itertools
import json
import math

import lightning as L
import pytest
import torch
from torch.testing import assert_close

from ganzoo.data.toy import GaussianMixture, gauss1d
from ganzoo.gan import has_batch_statistics
from ganzoo.theory import empirical_w1
from train import train

from .conftest import CONF

# --- learning-rate decay, as logged ------------------------------------------------------


def _logged_lrs(out_dir) -> dict[int, tuple[float, float]]:
    """{generator step: (train/lr_g, train/lr_d)} from the run's CSV log, one row per step."""
    with open(out_dir / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["train/lr_g"]]
    lrs = {int(r["step"]): (float(r["train/lr_g"]), float(r["train/lr_d"])) for r in rows}
    assert len(lrs) == len(rows), "a generator step was logged twice"
    return lrs


@pytest.mark.parametrize("n_critic, steps", [(1, 10), (3, 4)])
def test_linear_decay_logs_the_rate_after_each_generator_step(make_cfg, tmp_path, n_critic,
                                                              steps):
    """lr_decay=linear (the default): the scheduler steps once per generator update, just
    before the figures are logged, so the rate logged at generator step g is the one the
    next update uses, base * (1 - g / steps), and 0 at the last step. Lightning's optimiser
    step count (k + 1 per generator update) plays no part."""
    cfg = make_cfg(f"steps={steps}", "log_every=1", f"n_critic={n_critic}")
    assert cfg.lr_decay == "linear"  # the default in conf/train.yaml
    base_g, base_d = cfg.optim.g.lr, cfg.optim.d.lr
    assert base_g != base_d  # the toy MLP's TTUR rates: a swap of the two would show
    metrics = train(cfg)
    lrs = _logged_lrs(tmp_path)
    assert sorted(lrs) == list(range(1, steps + 1))
    for g, (lr_g, lr_d) in lrs.items():
        # Exactly LambdaLR's arithmetic: base_lr * factor(g), factor(g) = 1 - g / steps.
        assert lr_g == base_g * (1.0 - g / steps), g
        assert lr_d == base_d * (1.0 - g / steps), g
    assert lrs[steps] == (0.0, 0.0)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train/lr_g"] == metrics["train/lr_g"] == 0.0
    assert saved["train/lr_d"] == metrics["train/lr_d"] == 0.0


def test_no_decay_keeps_the_base_rates(make_cfg, tmp_path):
    cfg = make_cfg("steps=5", "log_every=1", "lr_decay=none")
    metrics = train(cfg)
    lrs = _logged_lrs(tmp_path)
    assert lrs == {g: (cfg.optim.g.lr, cfg.optim.d.lr) for g in range(1, 6)}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train/lr_g"] == metrics["train/lr_g"] == cfg.optim.g.lr
    assert saved["train/lr_d"] == metrics["train/lr_d"] == cfg.optim.d.lr


# --- theory.empirical_w1 on point sets -------------------------------------------------


class FixedSample:
    """A 'mixture' whose samples are a given point set: empirical_w1 then measures W1
    between two point sets of equal size, the optimal matching's mean distance."""

    def __init__(self, points: torch.Tensor) -> None:
        self.points = points

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        assert n == self.points.shape[0], "empirical_w1 draws as many points as it matches"
        return self.points


def _brute_force_w1(p: torch.Tensor, q: torch.Tensor) -> float:
    """min over all matchings of the mean Euclidean distance, by enumeration."""
    n = p.shape[0]
    pts_p, pts_q = p.tolist(), q.tolist()
    return min(sum(math.dist(pts_p[i], pts_q[j]) for i, j in enumerate(perm)) / n
               for perm in itertools.permutations(range(n)))


def test_w1_of_a_translate_is_the_translation_length():
    """For Q = P + t every matching costs at least |t| on average (the triangle inequality
    on the sum of the differences), and the identity attains it; the order of Q's points
    does not matter."""
    p = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor([3.0, 4.0], dtype=torch.float64)
    shuffled = (p + t)[torch.randperm(40, generator=torch.Generator().manual_seed(1))]
    assert_close(empirical_w1(FixedSample(p), shuffled), 5.0)
    assert_close(empirical_w1(FixedSample(p), p.flip(0)), 0.0)


def test_w1_of_two_swapped_pairs():
    """P = {(0,0), (2,0)}, Q = {(2,1), (0,1)}: matching in the given order costs sqrt(5)
    per point, the crossed matching 1, so W1 = 1 exactly."""
    p = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[2.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert empirical_w1(FixedSample(p), q) == 1.0
    assert empirical_w1(FixedSample(q), p) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_w1_is_the_optimal_matching_found_by_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    q = 2 * torch.rand(6, 2, generator=gen, dtype=torch.float64)
    expected = _brute_force_w1(p, q)
    # The identity matching is not optimal here, so an unmatched mean would fail.
    assert expected < sum(math.dist(a, b) for a, b in zip(p.tolist(), q.tolist(), strict=True)) / 6
    assert_close(empirical_w1(FixedSample(p), q), expected)
    # float32 samples are measured in float64 alike.
    assert_close(empirical_w1(FixedSample(p), q.float()),
                 _brute_force_w1(p, q.float().double()))


def test_w1_to_a_point_mass_mixture_is_the_mean_distance():
    """A real GaussianMixture, one mode of std 1e-6 at c: every fresh data sample is c up
    to 1e-5, so W1 is the mean distance of the fake points to c."""
    c = torch.tensor([1.0, -2.0])
    mixture = GaussianMixture([c.tolist()], 1e-6)
    fake = torch.tensor([[1.0, 1.0], [4.0, -2.0], [1.0, -2.0], [-2.0, 2.0]])  # 3, 3, 0, 5
    assert empirical_w1(mixture, fake) == pytest.approx(11 / 4, abs=1e-5)


def test_w1_in_one_dimension_is_the_cdf_gap_integral():
    """1-D: N(0, 1) against all mass at a: W1 = E|X - a| = a (2 Phi(a) - 1) + 2 phi(a),
    computed on a grid of 20,001 points over [-8, 8] (the jump at a costs the trapezoid
    rule about half a grid step, 4e-4)."""
    a = 0.7
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    expected = a * math.erf(a / math.sqrt(2)) + 2 * phi
    fake = torch.full((50, 1), a)
    assert empirical_w1(gauss1d([0.0], [1.0]), fake) == pytest.approx(expected, abs=5e-4)


# --- GAN.generate in chunks ------------------------------------------------------------


class KeepModule(L.Callback):
    """Keeps the trained LightningModule (named in the config: +callbacks.keep)."""

    modules: list = []

    def on_fit_end(self, trainer, pl_module):
        KeepModule.modules.append(pl_module)


def _trained_module(cfg):
    KeepModule.modules = []
    metrics = train(cfg)
    assert metrics["status"] == "completed"
    (module,) = KeepModule.modules
    return module.eval()  # running statistics, were there any


KEEP = f"+callbacks.keep._target_={__name__}.KeepModule"


@pytest.fixture(scope="module")
def ring_module(tmp_path_factory):
    """The default ring MLP after 3 steps, trained once for the tests that only sample."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[
            f"out_dir={tmp_path_factory.mktemp('ring')}", "steps=3", "eval_every=0",
            "data.n_train=256", "data.n_eval=100", "trainer.enable_progress_bar=false", KEEP])
    GlobalHydra.instance().clear()
    module = _trained_module(cfg)
    assert module.latent_dim == 4 and not module.num_classes
    assert not has_batch_statistics(module.generator)  # the ring MLP: no batch norm
    return module


@pytest.mark.parametrize("batch_size", [8, 12])
def test_generate_in_chunks_gives_the_unchunked_samples(ring_module, batch_size):
    """20 samples in chunks of 8 (8 + 8 + 4) or 12 (12 + 8) are the single batch's points:
    every chunk's noise comes from the one seeded stream, and the MLP treats every sample
    on its own. (Chunks of 4k rows of a 4-d latent: 16k normal draws each; see the test
    below for other sizes.) They agree to float32 precision, not always bit for bit: on
    some CPUs (an AVX-512 Xeon) the BLAS rounds a matmul of 8 or 12 rows differently from
    one of 20; a chunk given other noise (reseeded, or another stream) gives other points."""
    whole = ring_module.generate(20, seed=5, batch_size=20)
    assert whole.shape == (20, 2)
    torch.testing.assert_close(ring_module.generate(20, seed=5, batch_size=batch_size), whole,
                               rtol=1e-5, atol=1e-6)
    assert torch.equal(ring_module.generate(20, seed=5), whole)  # default batch_size 4096
    assert not torch.equal(ring_module.generate(20, seed=6, batch_size=batch_size), whole)


def test_generate_in_chunks_of_any_size_gives_the_unchunked_samples(ring_module):
    """The documented promise, 'the same seed gives the same points', whatever the chunk
    size: n = 11 in chunks of 4 (11 not divisible by 4). generate draws all noise at once:
    torch's CPU randn fills tensors of >= 16 values 16 at a time, so chunked draws of
    other sizes would give other points."""
    whole = ring_module.generate(11, seed=5, batch_size=4096)
    # the same noise; the MLP's matmuls round differently for 4 rows than for 11, so the
    # points agree to float32 precision (with chunked draws they were other points)
    torch.testing.assert_close(ring_module.generate(11, seed=5, batch_size=4), whole)


TINY_DCGAN = ["model.generator.width=4", "model.discriminator.width=4"]


def test_conditional_generate_splits_the_labels_per_chunk(make_cfg):
    """A conditional DCGAN (digits, its 10 classes): chunks of 8 (8 + 8 + 4 samples of a
    100-d latent) with explicit labels give the single batch's samples, so chunk i was
    given labels[8 i : 8 i + 8]; the default labels 0, 1, ..., 9, 0, ... chunk alike."""
    from ganzoo.nets.layers import ConditionalBatchNorm2d

    module = _trained_module(make_cfg(
        "data=digits", "model=dcgan", "model.conditional=true", "data.clusters=null",
        "data.batch_size=4", "data.num_workers=0", "data.n_train=8", "steps=2", *TINY_DCGAN,
        KEEP))
    assert module.num_classes == 10 and module.label_prior is None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # classes far apart, so that a label's effect is unmistakable
        for m in module.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.embed.weight.normal_(generator=gen)
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4])
    whole = module.generate(20, seed=2, batch_size=20, labels=labels)
    assert whole.shape == (20, 1, 16, 16)
    assert torch.equal(module.generate(20, seed=2, batch_size=8, labels=labels), whole)
    # What the chunks would make had each been given the first chunk's labels instead:
    first_chunk_only = labels[torch.arange(20) % 8]
    wrong = module.generate(20, seed=2, batch_size=20, labels=first_chunk_only)
    assert torch.equal(wrong[:8], whole[:8])
    assert not torch.allclose(wrong[8:], whole[8:])
    # Default labels: the classes in turn, also split per chunk.
    in_turn = module.generate(20, seed=2, batch_size=20, labels=torch.arange(20) % 10)
    assert torch.equal(module.generate(20, seed=2, batch_size=8), in_turn)
