"""The f-GAN Gaussian-fit experiment (Nowozin et al. 2016, Sec. 4.1), fast version.

The exact optima come from ``best_fit``; for KL(P||Q) the best Gaussian is known in
closed form (moment matching), which pins the numerical integration and minimisation.
"""

import json
import math

import pytest
import torch

from ganzoo.config import ConfigError
from ganzoo.experiments.fgan_gaussian_fit import best_fit, exact_descent, fitted_gaussian, run
from ganzoo.gan import NonFiniteLossError
from train import train

from .conftest import slow_except

MIX = ([-1.0, 2.0], [0.5, 0.5], [0.8, 0.2])


def test_kl_optimum_is_moment_matching():
    means, stds, weights = MIX
    mean = sum(w * m for m, w in zip(means, weights, strict=True))
    var = sum(w * (s**2 + m**2) for m, s, w in zip(means, stds, weights, strict=True)) - mean**2
    mu, sigma, _ = best_fit("kl", *MIX)
    assert mu == pytest.approx(mean, abs=1e-3)
    assert sigma == pytest.approx(math.sqrt(var), abs=1e-3)


def test_js_and_gan_share_their_optimum_and_differ_by_log_4():
    mu_js, sigma_js, d_js = best_fit("js", *MIX)
    mu_gan, sigma_gan, d_gan = best_fit("gan", *MIX)
    assert (mu_gan, sigma_gan) == pytest.approx((mu_js, sigma_js), abs=1e-3)
    assert d_gan == pytest.approx(d_js - math.log(4), abs=1e-6)


@pytest.mark.parametrize("name", slow_except(["kl", "reverse_kl", "pearson",
                                              "squared_hellinger", "js", "gan"], "kl"))
def test_the_preset_mixture_leads_every_target_from_the_start_to_its_global_optimum(name):
    # The experiment's mixture is chosen so that descent on the exact divergence from the
    # generator's start N(0, 1) ends at the global optimum, not in a local basin: what a
    # well-trained critic can lead the generator to is then the table's (mu*, sigma*).
    from omegaconf import OmegaConf

    preset = OmegaConf.load("conf/experiment/fgan_gaussian_fit.yaml")
    mixture = OmegaConf.to_container(preset.data.distribution)
    mix = (mixture["means"], mixture["stds"], mixture["weights"])
    assert mix == MIX
    start = OmegaConf.load("conf/model/gaussian.yaml").model.generator
    mu, sigma = exact_descent(name, *mix, mu=start.mu, sigma=start.sigma)
    mu_star, sigma_star, _ = best_fit(name, *mix)
    assert (mu, sigma) == pytest.approx((mu_star, sigma_star), abs=0.01)


@pytest.mark.slow
def test_a_start_in_a_local_basin_is_detected():
    # With weight 0.7 on the near mode, 2 JS has a wide local minimum that holds N(0, 1).
    mix = ([-1.0, 2.0], [0.5, 0.5], [0.7, 0.3])
    mu, sigma = exact_descent("js", *mix, mu=0.0, sigma=1.0)
    mu_star, sigma_star, _ = best_fit("js", *mix)
    assert abs(mu - mu_star) > 0.5 and abs(sigma - sigma_star) > 0.5


@pytest.mark.slow
def test_experiment_trains_each_divergence_in_its_own_directory(make_cfg, tmp_path):
    cfg = make_cfg("experiment=fgan_gaussian_fit", "fit.divergences=[kl]", "steps=20",
                   "ckpt_every=20")
    rows = run(cfg, train)
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved == rows and [r["divergence"] for r in rows] == ["kl"]
    mu_hat, sigma_hat = fitted_gaussian(tmp_path / "kl" / "checkpoints" / "last.ckpt")
    assert (rows[0]["mu_hat"], rows[0]["sigma_hat"]) == (mu_hat, sigma_hat)
    assert (rows[0]["mu_star"], rows[0]["sigma_star"]) == pytest.approx(
        best_fit("kl", *MIX)[:2])
    assert (tmp_path / "fit.csv").read_text().startswith("divergence,mu_hat,sigma_hat")
    state = torch.load(tmp_path / "kl" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganzoo"]["g_step"] == 20
    assert rows[0]["status"] == "completed" and rows[0]["fit_step"] == 20


@pytest.mark.slow
def test_a_diverged_divergence_keeps_its_row_and_the_others_still_run(make_cfg, tmp_path,
                                                                        capsys):
    cfg = make_cfg("experiment=fgan_gaussian_fit", "fit.divergences=[neyman,pearson,kl]",
                   "steps=20", "ckpt_every=10")

    def diverging_train(sub):
        name = sub.loss.divergence
        if name == "pearson":  # blows up before its first checkpoint
            raise NonFiniteLossError("train/d_loss became nan or inf at generator step 3")
        metrics = train(sub)
        if name == "neyman":  # blows up after its last finite checkpoint
            raise NonFiniteLossError("train/d_loss became nan or inf at generator step 21")
        return metrics

    rows = run(cfg, diverging_train)
    assert [(r["divergence"], r["status"], r["fit_step"]) for r in rows] == [
        ("neyman", "diverged", 20), ("pearson", "diverged", None), ("kl", "completed", 20)]
    assert (rows[0]["mu_hat"], rows[0]["sigma_hat"]) == fitted_gaussian(
        tmp_path / "neyman" / "checkpoints" / "last.ckpt")
    assert math.isnan(rows[1]["mu_hat"]) and math.isnan(rows[1]["sigma_hat"])
    table = capsys.readouterr().out.splitlines()
    assert table[-2:] == ["", f"fits: {tmp_path / 'fits.png'}"]  # the combined figure
    assert table[-5].endswith("  diverged; fit from step 20")
    assert table[-4].endswith("  diverged; no fit")
    assert table[-3].split()[0] == "kl" and "diverged" not in table[-3]


def test_unknown_divergence_is_one_clear_error(make_cfg):
    cfg = make_cfg("experiment=fgan_gaussian_fit", "fit.divergences=[kl,hellinger]")
    with pytest.raises(ConfigError, match="fit.divergences"):
        run(cfg, train)


def test_fits_figure_has_a_panel_per_divergence(tmp_path):
    from PIL import Image

    from ganzoo.experiments.fgan_gaussian_fit import plot_fits

    rows = [{"divergence": name, "mu_hat": mu, "sigma_hat": 0.6, "mu_star": -1.0,
             "sigma_star": 0.5, "status": status}
            for name, mu, status in (("kl", -0.4, "completed"), ("js", -1.0, "completed"),
                                     ("neyman", math.nan, "diverged"))]
    plot_fits(tmp_path / "fits.png", rows, *MIX, steps=20)
    # Three panels in one row of 3.2 x 2.6 inches at 110 dpi.
    with Image.open(tmp_path / "fits.png") as image:
        assert image.size == (1056, 286)
