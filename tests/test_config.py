"""Every option of every config group composes and instantiates; bad values are refused."""

import subprocess
import sys

import hydra
import pytest
import torch
from hydra.errors import InstantiationException

from ganzoo.config import ConfigError, validate
from ganzoo.losses import GANLoss, Wasserstein
from ganzoo.penalties import R1, GradientPenalty, Penalty

from .conftest import ROOT, group_options, refusal, slow_except

IMAGE_MODELS = {"dcgan", "resnet"}


def test_config_groups_exist():
    assert {"minimax", "nonsaturating", "fgan", "wasserstein", "wgan_gp"} <= set(
        group_options("loss"))
    assert {"ring", "grid", "gauss1d"} <= set(group_options("data"))
    assert "mlp" in group_options("model")


@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_loss_instantiates_on_its_own(make_cfg, loss):
    cfg = make_cfg(f"loss={loss}")
    validate(cfg)
    plugin = hydra.utils.instantiate(cfg.loss)
    assert isinstance(plugin, GANLoss)
    for player in ("g", "d"):
        opt = hydra.utils.instantiate(cfg.optim[player])([torch.nn.Parameter(torch.zeros(2))])
        assert isinstance(opt, torch.optim.Optimizer)


@pytest.mark.parametrize("data", group_options("data"))
@pytest.mark.parametrize("model", slow_except(group_options("model"), "dcgan", "gaussian", "mlp"))
def test_every_model_and_data_build(make_cfg, model, data):
    cfg = make_cfg(f"model={model}", f"data={data}")
    dm = hydra.utils.instantiate(cfg.data)
    if model in IMAGE_MODELS and len(dm.shape) != 3:  # an image network on points: refused
        for net in ("generator", "discriminator"):
            with pytest.raises(InstantiationException) as err:
                hydra.utils.instantiate(cfg.model[net])
            assert str(err.value.__cause__) == (
                f"model: {model} generates 16x16, 32x32 or 64x64 images, "
                f"data.shape is {list(dm.shape)}")
        return
    if model == "gaussian" and tuple(dm.shape) != (1,):  # G(z) = mu + sigma z is 1-D only
        with pytest.raises(InstantiationException) as err:
            hydra.utils.instantiate(cfg.model.generator)
        assert str(err.value.__cause__) == (
            "model=gaussian is 1-D: it needs data.shape [1] and latent_dim 1, got "
            f"{list(dm.shape)} and 1")
        return
    G = hydra.utils.instantiate(cfg.model.generator)
    D = hydra.utils.instantiate(cfg.model.discriminator)
    classes = getattr(G, "num_classes", 0)
    if data == "digits" and model in IMAGE_MODELS:  # conditional on 20 k-means clusters
        assert classes == D.num_classes == 20
    y = (torch.arange(4) % classes,) if classes else ()
    x = G(torch.randn(4, cfg.model.latent_dim), *y)
    assert tuple(x.shape) == (4, *dm.shape)
    assert D(x, *y).shape == (4,)


@pytest.mark.parametrize("group", ["logger", "trainer", "optim"])
def test_other_groups_compose(make_cfg, group):
    for option in group_options(group):
        make_cfg(f"{group}={option}")


def test_loss_brings_its_papers_defaults(make_cfg):
    gp = make_cfg("loss=wgan_gp", "data=cifar10")
    assert gp.model.name == "dcgan"
    assert gp.n_critic == 5 and gp.penalty.weight == 10.0
    assert gp.optim.g.lr == gp.optim.d.lr == 1e-4
    assert list(gp.optim.g.betas) == list(gp.optim.d.betas) == [0.0, 0.9]
    assert gp.optim.d._target_ == "torch.optim.Adam"
    # The toy MLP suggests the WGAN-GP authors' toy lambda and a rate for its short run.
    toy = make_cfg("loss=wgan_gp")
    assert toy.n_critic == 5 and toy.penalty.weight == 0.1
    assert toy.optim.g.lr == toy.optim.d.lr == 1e-3
    assert list(toy.optim.d.betas) == [0.0, 0.9]
    assert make_cfg("loss=wgan_gp", "penalty.weight=10").penalty.weight == 10
    w = make_cfg("loss=wasserstein")
    assert w.n_critic == 5 and w.loss.clip == 0.01
    assert w.optim.g._target_ == "torch.optim.RMSprop" and w.optim.g.lr == 5e-5
    ns = make_cfg("loss=nonsaturating")
    assert ns.n_critic == 1
    # every value stays overridable
    assert make_cfg("loss=wgan_gp", "n_critic=2", "optim.d.lr=3e-4").optim.d.lr == 3e-4


@pytest.mark.parametrize("penalty", group_options("penalty"))
@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_penalty_composes_with_every_loss(make_cfg, loss, penalty):
    cfg = make_cfg(f"loss={loss}", f"penalty={penalty}")
    validate(cfg)
    built = hydra.utils.instantiate(cfg.penalty)
    if penalty == "none":
        assert cfg.penalty is None and built is None
    else:
        assert isinstance(built, Penalty)
    assert isinstance(hydra.utils.instantiate(cfg.loss), GANLoss)


def test_wgan_gp_selects_the_gradient_penalty(make_cfg):
    image = make_cfg("loss=wgan_gp", "data=digits", "model.discriminator.norm=layer")
    assert image.model.name == "dcgan"
    gp = hydra.utils.instantiate(image.penalty)
    assert type(gp) is GradientPenalty and gp.weight == 10.0 and gp.every == 1
    toy = make_cfg("loss=wgan_gp")
    assert toy.model.name == "mlp"
    gp = hydra.utils.instantiate(toy.penalty)
    assert type(gp) is GradientPenalty and gp.weight == 0.1
    loss = hydra.utils.instantiate(toy.loss)
    assert type(loss) is Wasserstein and loss.clip == 0.0
    # Another penalty chosen beside it replaces the gradient penalty.
    r1 = hydra.utils.instantiate(make_cfg("loss=wgan_gp", "penalty=r1").penalty)
    assert type(r1) is R1


@pytest.mark.parametrize("override", ["r1_gamma=1.0", "r1_every=2"])
def test_r1_keys_point_to_the_penalty_group(make_cfg, override):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(override))
    assert str(err.value) == ("r1_gamma and r1_every are replaced by the penalty group: use "
                              "penalty=r1 penalty.weight=GAMMA penalty.every=N")


@pytest.mark.parametrize("override, message", [
    ("steps=0", "steps must be >= 1, got 0"),
    ("steps=-5", "steps must be >= 1, got -5"),
    ("n_critic=0", "n_critic must be >= 1, got 0"),
    ("optim.g.lr=-1e-3", "optim.g.lr must be a positive number, got -0.001"),
    ("optim.d.lr=0", "optim.d.lr must be a positive number, got 0"),
    ("data.batch_size=0", "data.batch_size must be >= 1, got 0"),
    ("ema.decay=1.5", "ema.decay must be a number in (0, 1) or null, got 1.5"),
    ("ema.decay=0", "ema.decay must be a number in (0, 1) or null, got 0"),
    ("ema.start=-1", "ema.start must be >= 0, got -1"),
    ("nonfinite=ignore", "nonfinite must be 'stop' or 'skip', got 'ignore'"),
    ("n_critic=abc", "n_critic must be an integer, got 'abc'"),
    ("threads=0", "threads must be >= 1, got 0"),
    ("threads=many", "threads must be an integer, got 'many'"),
    ("log_every=0", "log_every must be >= 1, got 0"),
    ("lr_decay=cosine", "lr_decay must be 'none' or 'linear', got 'cosine'"),
    ("model.latent_dim=0", "model.generator.latent_dim must be >= 1, got 0"),
    ("optim.g._target_=torch.optim.SGD",
     "optim.g: torch.optim.SGD does not take betas (drop it with ~optim.g.betas)"),
    ("loss=wasserstein +optim.d.alpha=-1", "optim.d: Invalid alpha value: -1"),
    ("model.generator.hidden_dim=0", "model.generator.hidden_dim must be >= 1, got 0"),
    ("model.discriminator.n_layers=-1", "model.discriminator.n_layers must be >= 0, got -1"),
    ("model=dcgan data=digits model.discriminator.width=0",
     "model.discriminator.width must be >= 1, got 0"),
    ("data.n_train=0", "data.n_train must be >= 1, got 0"),
    ("data=digits model.generator.conditional=false model.discriminator.conditional=false",
     "model.conditional=true but the generator has num_classes=0"),
])
def test_nonsensical_values_are_refused(make_cfg, override, message):
    assert refusal(make_cfg(*override.split())) == message


def test_unknown_divergence_is_refused(make_cfg):
    assert refusal(make_cfg("loss=fgan", "loss.divergence=hellinger")).startswith(
        "loss.divergence: unknown f-divergence 'hellinger'; choose one of kl, ")


def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_bad_value_is_one_line_and_nonzero(tmp_path):
    res = _cli("steps=0", f"hydra.run.dir={tmp_path}")
    assert res.returncode == 2
    assert res.stderr.strip() == "error: steps must be >= 1, got 0"
    res = _cli("loss=fgan", "loss.divergence=hellinger", f"hydra.run.dir={tmp_path}")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: loss.divergence: unknown f-divergence 'hellinger'; choose one of kl, "
        "reverse_kl, pearson, neyman, squared_hellinger, js, gan, total_variation"]


def test_cli_unknown_option_lists_what_exists(tmp_path):
    res = _cli("loss=foo", f"hydra.run.dir={tmp_path}")
    assert res.returncode != 0
    assert "Could not find 'loss/foo'" in res.stderr
    assert "nonsaturating" in res.stderr and "wgan_gp" in res.stderr
    res = _cli("stepz=5", f"hydra.run.dir={tmp_path}")
    assert res.returncode != 0
    assert "Key 'stepz' is not in struct" in res.stderr


def test_rmsprop_keeps_the_models_rates_and_wasserstein_its_papers(make_cfg):
    rates = lambda cfg: (cfg.optim.g.lr, cfg.optim.d.lr)  # noqa: E731
    assert rates(make_cfg("optim=rmsprop")) == rates(make_cfg())  # the MLP's own rates
    assert make_cfg("optim=rmsprop").optim.g._target_ == "torch.optim.RMSprop"
    assert rates(make_cfg("loss=wasserstein")) == (5e-5, 5e-5)  # Arjovsky et al. 2017


def test_threads_auto_is_one_for_toy_data_and_torchs_default_for_images(make_cfg):
    from ganzoo.run import set_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert set_threads(make_cfg()) == 1  # the ring: auto -> 1
        torch.set_num_threads(2)
        assert set_threads(make_cfg("data=digits")) == 2  # images: left as torch has it
        assert set_threads(make_cfg("threads=3")) == 3
    finally:
        torch.set_num_threads(before)
