"""The latent prior (ganzoo.priors): the map from standard normal draws to G's input, its
use in training, evaluation and checkpoint sampling, and its refusals."""

from __future__ import annotations

import math

import pytest
import torch

from ganzoo.priors import Gaussian, GaussianMixture, build_prior
from tests.conftest import refusal


def test_the_gaussian_prior_is_the_draw_itself():
    z = torch.randn(7, 3)
    assert Gaussian()(z) is z
    assert isinstance(build_prior(None), Gaussian)  # checkpoints from before priors
    assert isinstance(build_prior({"_target_": "ganzoo.priors.Gaussian"}), Gaussian)


def test_a_draw_at_the_middle_of_a_bin_goes_to_that_component_with_no_offset():
    K, d = 5, 4
    prior = GaussianMixture(K, radius=8.0, sigma=0.5, seed=3)
    z = torch.zeros(K, d)
    z[:, 0] = torch.special.ndtri((torch.arange(K, dtype=torch.float64) + 0.5) / K).float()
    z[:, 1:] = torch.arange(K * (d - 1), dtype=torch.float32).reshape(K, d - 1) / 10
    x = prior(z)
    assert prior.components_of(z).tolist() == [[k] for k in range(K)]
    means = prior.means(d)[0]
    expected = means.clone()
    expected[:, 1:] += 0.5 * z[:, 1:]
    torch.testing.assert_close(x, expected, atol=1e-6, rtol=0)


def test_one_component_at_the_origin_with_unit_width_is_the_gaussian():
    z = torch.randn(1000, 6, generator=torch.Generator().manual_seed(0)).clamp(-5, 5)
    torch.testing.assert_close(GaussianMixture(1, radius=0.0, sigma=1.0)(z), z,
                               atol=2e-6, rtol=0)


def test_the_components_are_equally_likely_and_gaussian_around_their_means():
    K, d, n = 8, 16, 80_000
    prior = GaussianMixture(K, radius=20.0, sigma=1.0, seed=1)
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(5))
    k = prior.components_of(z)[:, 0]
    counts = torch.bincount(k, minlength=K).double()
    # Binomial(n, 1/K) counts: within 5 standard deviations of n / K.
    assert (counts - n / K).abs().max() < 5 * math.sqrt(n * (1 / K) * (1 - 1 / K))
    e = (prior(z) - prior.means(d)[0][k]) / prior.sigma  # the offsets, per sample
    for j in range(K):
        ej = e[k == j]
        se = 1 / math.sqrt(len(ej))
        assert ej.mean(0).abs().max() < 5 * se, j
        assert (ej.std(0) - 1).abs().max() < 5 * se * math.sqrt(2), j
    # The first coordinate's offset does not depend on the bin it came from.
    assert torch.corrcoef(torch.stack([e[:, 0], k.double().float()]))[0, 1].abs() < 0.02


def test_the_means_are_fixed_by_the_seed_and_scaled_by_the_radius():
    a, b = GaussianMixture(50, radius=8.0, seed=0), GaussianMixture(50, radius=8.0, seed=0)
    assert torch.equal(a.means(100), b.means(100))
    assert not torch.equal(a.means(100), GaussianMixture(50, radius=8.0, seed=1).means(100))
    m = a.means(100)[0]
    assert a.means(100).shape == (1, 50, 100) and m.dtype == torch.float32
    # In 100 dimensions each mean lies about radius from the origin, radius * sqrt(2)
    # from the others.
    norms = m.norm(dim=1)
    assert 6.5 < norms.min() and norms.max() < 9.5
    pair = torch.cdist(m, m)[~torch.eye(50, dtype=torch.bool)]
    assert 8.0 < pair.min() and pair.max() < 14.5
    assert a.means(100, dtype=torch.float64).dtype == torch.float64


def test_a_product_of_mixtures_chooses_one_component_per_block():
    K, F, d = 4, 3, 7  # blocks of 3, 2 and 2 coordinates
    prior = GaussianMixture(K, radius=6.0, sigma=0.25, seed=2, factors=F)
    assert [b.tolist() for b in prior.blocks(d)] == [[0, 1, 2], [3, 4], [5, 6]]
    means = prior.means(d)
    assert means.shape == (F, K, d)
    for f, block in enumerate(prior.blocks(d)):  # each factor's means live on its block
        outside = torch.ones(d, dtype=torch.bool)
        outside[block] = False
        assert torch.all(means[f][:, outside] == 0) and torch.all(means[f][:, block] != 0)
    # A draw whose choosing coordinates sit at bin middles: those bins, no offset there.
    pick = torch.tensor([[2, 0, 3], [1, 1, 0]])
    z = torch.randn(2, d, generator=torch.Generator().manual_seed(1))
    firsts = [0, 3, 5]
    z[:, firsts] = torch.special.ndtri((pick.double() + 0.5) / K).float()
    assert torch.equal(prior.components_of(z), pick)
    expected = sum(means[f][pick[:, f]] for f in range(F)) + 0.25 * z
    expected[:, firsts] = sum(means[f][pick[:, f]] for f in range(F))[:, firsts]
    torch.testing.assert_close(prior(z), expected, atol=1e-6, rtol=0)
    # K^F equally likely joint components.
    n = 64_000
    zz = torch.randn(n, d, generator=torch.Generator().manual_seed(3))
    k = prior.components_of(zz)
    joint = torch.bincount(k[:, 0] * K * K + k[:, 1] * K + k[:, 2], minlength=K ** F)
    p = 1 / K ** F
    assert (joint.double() - n * p).abs().max() < 5 * math.sqrt(n * p * (1 - p))
    # One factor is the single mixture, bit for bit.
    one, z1 = GaussianMixture(K, 6.0, 0.25, seed=2), zz[:100]
    assert torch.equal(one(z1), GaussianMixture(K, 6.0, 0.25, seed=2, factors=1)(z1))


def test_more_factors_than_latent_dimensions_are_refused(make_cfg):
    assert refusal(make_cfg("prior=mixture", "prior.factors=5")) == (
        "prior.factors=5 needs at least as many latent dimensions, model.latent_dim=4")


@pytest.mark.parametrize("kwargs, message", [
    ({"components": 0}, "prior.components must be an integer >= 1, got 0"),
    ({"components": 3, "factors": 0}, "prior.factors must be an integer >= 1, got 0"),
    ({"components": 2.5}, "prior.components must be an integer >= 1, got 2.5"),
    ({"components": 4, "radius": -1.0}, "prior.radius must be a finite number >= 0, got -1.0"),
    ({"components": 4, "sigma": float("nan")},
     "prior.sigma must be a finite number >= 0, got nan"),
])
def test_bad_mixture_settings_are_refused_in_one_line(kwargs, message):
    from ganzoo.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        GaussianMixture(**kwargs)
    assert str(err.value) == message


def test_bad_prior_settings_are_refused_before_training(make_cfg):
    assert refusal(make_cfg("prior=mixture", "prior.components=0")) == (
        "prior.components must be an integer >= 1, got 0")
    assert refusal(make_cfg("prior=mixture", "prior.sigma=-0.5")) == (
        "prior.sigma must be a finite number >= 0, got -0.5")


def test_training_evaluation_and_checkpoint_sampling_share_the_prior(make_cfg, tmp_path):
    from ganzoo.sample import load_generator, sample
    from train import train

    cfg = make_cfg("prior=mixture", "prior.components=6")
    train(cfg)
    G = load_generator(tmp_path / "checkpoints" / "last.ckpt")
    assert isinstance(G.prior, GaussianMixture)
    # The toy MLPs' tuning (conf/tuning/prior/mlp_mixture.yaml) narrows the components.
    assert (G.prior.components, G.prior.radius, G.prior.sigma) == (6, 4.0, 0.1)

    from ganzoo import run

    module = run.build(cfg)[1]
    assert isinstance(module.prior, GaussianMixture)
    z = module.sample_z(200, generator=torch.Generator().manual_seed(4))
    # The generator's inputs are the mixture's: each within a few sigma of a mean.
    d = torch.cdist(z, module.prior.means(z.shape[1])[0]).min(1).values
    assert d.max() < 6 * 0.1 * math.sqrt(z.shape[1])
    # Sampling from the checkpoint draws what the module's generate draws.
    module.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt",
                                      weights_only=False)["state_dict"])
    module.eval()
    torch.testing.assert_close(sample(G, 32, seed=9), module.generate(32, seed=9))


def test_resuming_with_another_prior_is_refused(make_cfg, tmp_path):
    from ganzoo.errors import CheckpointError
    from train import train

    train(make_cfg("prior=mixture", "steps=2"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="prior.components: 50 there, 20 here"):
        train(make_cfg("prior=mixture", "prior.components=20", "steps=4",
                       f"ckpt_path={ckpt}"))
