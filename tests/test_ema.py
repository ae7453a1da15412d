"""Generator EMA: exact averages, the start step, and its use for sampling."""

import lightning as L
import torch

import ganzoo
from ganzoo.sample import sample
from train import train


class RecordGenerator(L.Callback):
    """Keeps a copy of the raw generator weights after every batch."""

    history: list = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        RecordGenerator.history.append(
            {k: v.detach().clone() for k, v in pl_module.generator.state_dict().items()})


def test_ema_is_the_exact_moving_average_from_its_start(make_cfg, tmp_path):
    RecordGenerator.history = []
    decay, start = 0.75, 2
    train(make_cfg("steps=6", f"ema.decay={decay}", f"ema.start={start}",
                   f"+callbacks.rec._target_={__name__}.RecordGenerator"))
    weights = RecordGenerator.history  # one per generator step (n_critic = 1)
    assert len(weights) == 6
    expected = dict(weights[start])  # first update (step start + 1) copies the weights
    for w in weights[start + 1:]:
        expected = {k: decay * expected[k] + (1 - decay) * w[k] for k in w}
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["generator_ema.n_averaged"]) == 6 - start
    for k, v in expected.items():
        torch.testing.assert_close(ckpt["state_dict"][f"generator_ema.module.{k}"], v)

    G = ganzoo.load_generator(tmp_path / "checkpoints" / "last.ckpt")
    raw = ganzoo.load_generator(tmp_path / "checkpoints" / "last.ckpt", ema=False)
    for k, v in G.state_dict().items():
        torch.testing.assert_close(v, expected[k])
        assert torch.equal(raw.state_dict()[k], weights[-1][k])
    assert not torch.equal(sample(G, 4), sample(raw, 4))


def test_without_ema_sampling_uses_the_raw_generator(make_cfg, tmp_path):
    cfg = make_cfg("steps=3")
    assert cfg.ema.decay is None  # the toy MLP's default
    train(cfg)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any(k.startswith("generator_ema") for k in ckpt["state_dict"])
    G = ganzoo.load_generator(tmp_path / "checkpoints" / "last.ckpt")
    for k, v in G.state_dict().items():
        assert torch.equal(v, ckpt["state_dict"][f"generator.{k}"])


def test_image_models_average_by_default_and_toy_mlp_does_not(make_cfg):
    assert make_cfg().ema.decay is None
    assert make_cfg("data=cifar10").ema.decay == 0.999
    assert make_cfg("data=digits", "model=resnet").ema.decay == 0.999
    assert make_cfg("data=digits", "ema.decay=0.99").ema.decay == 0.99
