"""Behaviour that no other test pins down exactly: the linear learning-rate decay as the
logs record it, ``theory.empirical_w1`` on point sets whose optimum is known, and the
chunking of ``GAN.generate``.

Everything here goes through public surfaces (``train(cfg)``, its CSV log and
metrics.json, Lightning callbacks named in the config, ``GAN.generate``) so that it does
not depend on how the GAN module is constructed.
"""

import csv
import json

import pytest

from train import train

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
