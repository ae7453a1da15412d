"""data=stacked_digits and eval=stacked: the Stacked-MNIST protocol on scikit-learn's
digits — the mode counter on inputs with known answers, the data's 1,000 modes and
independent channels, the cached classifier, and a short run end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from ganzoo.data.stacked import StackedDigits
from ganzoo.metrics import digits as digits_clf
from ganzoo.metrics.stacked import class_kl, mode_counts, stacked_metrics, triples
from train import train

from .conftest import refusal

TINY = ("model.generator.width=8", "model.discriminator.width=8", "eval.n_samples=300",
        "eval.classifier_epochs=1")


def _one_hot_triples(modes: torch.Tensor, p: float = 1.0) -> torch.Tensor:
    """Channel probabilities (N, 3, 10) putting p on each digit of 100 a + 10 b + c."""
    digits = torch.stack([modes // 100, modes // 10 % 10, modes % 10], dim=1)  # (N, 3)
    probs = F.one_hot(digits, 10).double() * p
    return probs + (1 - p) / 9 * (1 - F.one_hot(digits, 10).double())


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A 3-epoch classifier (held-out accuracy about 0.93), trained once for the module."""
    return digits_clf.load_classifier(tmp_path_factory.mktemp("clf"), epochs=3)


def test_every_triple_once_is_1000_modes_and_no_divergence():
    probs = _one_hot_triples(torch.arange(1000))
    assert torch.equal(triples(probs), torch.arange(1000))
    figures = stacked_metrics(probs)
    assert figures["eval/modes"] == 1000.0
    torch.testing.assert_close(figures["eval/reverse_kl"], 0.0, rtol=0, atol=1e-12)
    assert figures["eval/confident"] == 100.0


def test_one_triple_repeated_is_one_mode_at_log_1000():
    figures = stacked_metrics(_one_hot_triples(torch.full((500,), 374), p=0.6))
    assert figures["eval/modes"] == 1.0
    torch.testing.assert_close(figures["eval/reverse_kl"], math.log(1000))
    assert figures["eval/confident"] == 0.0  # top class at 0.6 < 0.9
    assert stacked_metrics(_one_hot_triples(torch.full((5,), 7), p=0.6),
                           confidence=0.5)["eval/confident"] == 100.0


def test_class_kl_is_the_channels_share_of_the_reverse_kl():
    # Every triple once: even shares on every channel.
    assert class_kl(mode_counts(torch.arange(1000))) == 0.0
    # One triple: each channel all on one digit, log 10 each, the whole log 1000.
    one = stacked_metrics(_one_hot_triples(torch.full((50,), 374)))
    torch.testing.assert_close(one["eval/class_kl"], 3 * math.log(10))
    torch.testing.assert_close(one["eval/class_kl"], one["eval/reverse_kl"])
    # (a, a, a) for every digit: even shares, all of the KL is the channels' dependence.
    diagonal = stacked_metrics(_one_hot_triples(torch.arange(10) * 111))
    torch.testing.assert_close(diagonal["eval/class_kl"], 0.0, rtol=0, atol=1e-12)
    torch.testing.assert_close(diagonal["eval/reverse_kl"], math.log(100))
    # Independent channels, a in {0, 0, 1}, b = 5, c any digit: no dependence, so the
    # reverse KL is the class KL, the sum of the channels' own KLs.
    modes = torch.tensor([100 * a + 50 + c for a in (0, 0, 1) for c in range(10)])
    figures = stacked_metrics(_one_hot_triples(modes))
    expected = 2 / 3 * math.log(20 / 3) + 1 / 3 * math.log(10 / 3) + math.log(10) + 0.0
    torch.testing.assert_close(figures["eval/class_kl"], expected)
    torch.testing.assert_close(figures["eval/reverse_kl"], expected)


def test_two_modes_in_equal_shares():
    figures = stacked_metrics(_one_hot_triples(torch.tensor([1, 999] * 50)))
    assert figures["eval/modes"] == 2.0
    torch.testing.assert_close(figures["eval/reverse_kl"], math.log(500))


def test_probabilities_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"^probs: expected \(N, 3, 10\)"):
        stacked_metrics(torch.rand(4, 10))


def _stream(dm: StackedDigits, n_batches: int) -> tuple[torch.Tensor, torch.Tensor]:
    dm.setup()
    stream = iter(dm.train_dataloader())
    batches = [next(stream) for _ in range(n_batches)]
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_batches_are_three_digits_with_their_triple_as_label():
    dm = StackedDigits(shape=[3, 16, 16], batch_size=32, seed=5)
    x, y = _stream(dm, 2)
    assert x.shape == (64, 3, 16, 16) and x.dtype == torch.uint8
    assert y.min() >= 0 and y.max() < 1000
    pool = zip(dm.images, dm.labels, strict=True)
    digits = {tuple(img.flatten().tolist()): int(c) for img, c in pool}
    for img, label in zip(x[:8], y[:8], strict=True):  # each channel: a digit of its class
        read = [digits[tuple(img[k].flatten().tolist())] for k in range(3)]
        assert 100 * read[0] + 10 * read[1] + read[2] == int(label)


def test_the_three_channels_are_drawn_independently():
    """Chi-square statistic of each pair of channels' 10x10 class table against
    independence (81 degrees of freedom: mean 81, sd 12.7) on 19,200 samples; one index
    shared by the channels would give about 170,000."""
    _, y = _stream(StackedDigits(shape=[3, 16, 16], batch_size=64), 300)
    classes = torch.stack([y // 100, y // 10 % 10, y % 10], dim=1)  # (N, 3)
    assert len(set(y.tolist())) == 1000  # every combination occurs
    for a, b in ((0, 1), (0, 2), (1, 2)):
        table = torch.zeros(10, 10).index_put_((classes[:, a], classes[:, b]),
                                                torch.ones(len(y)), accumulate=True)
        expected = table.sum(1, keepdim=True) * table.sum(0, keepdim=True) / len(y)
        chi2 = float(((table - expected) ** 2 / expected).sum())
        assert chi2 < 150, (a, b, chi2)
        assert (classes[:, a] == classes[:, b]).float().mean() < 0.12  # about 1 in 10


def test_the_stream_resumes_exactly_and_follows_the_seed():
    x, y = _stream(StackedDigits(shape=[3, 16, 16], seed=2), 4)
    resumed = StackedDigits(shape=[3, 16, 16], seed=2)
    resumed.seek(3)  # before setup, as on resume
    x3, y3 = _stream(resumed, 1)
    assert torch.equal(x3, x[-64:]) and torch.equal(y3, y[-64:])
    other, _ = _stream(StackedDigits(shape=[3, 16, 16], seed=3), 1)
    assert not torch.equal(other, x[:64])


def test_image_streams_differ_between_seeds():
    """torch keeps 32 bits of a seed: batch seeds packed as (seed << 32) + i were the same
    for every seed. The digits stream and the stacked one now follow data.seed."""
    from ganzoo.data.images import ImageDataModule

    def first(seed: int) -> torch.Tensor:
        dm = ImageDataModule("digits", [1, 16, 16], seed=seed)
        dm.setup()
        return next(iter(dm.train_dataloader()))[1]

    assert torch.equal(first(0), first(0)) and not torch.equal(first(0), first(1))


def test_real_stacked_digits_cover_the_modes(classifier):
    dm = StackedDigits(shape=[3, 16, 16])
    x = torch.cat(list(dm.real_images(10_000, 2000))).float().div(127.5).sub(1)
    assert x.shape == (10_000, 3, 16, 16)
    probs = classifier.probs(x.reshape(-1, 1, 16, 16)).reshape(-1, 3, 10)
    figures = stacked_metrics(probs)
    assert figures["eval/modes"] >= 990
    assert figures["eval/reverse_kl"] < 0.1  # finite-sample floor: about 999 / 20,000


def test_the_classifier_is_cached_and_read_back(tmp_path, monkeypatch):
    state = torch.get_rng_state()
    first = digits_clf.load_classifier(tmp_path, epochs=1)
    assert torch.equal(torch.get_rng_state(), state)  # training left the run's RNG alone
    assert first.path == tmp_path / "digits-classifier-16px-e1-v1.pt" and first.path.is_file()
    assert 0.5 < first.accuracy < 1

    def refuse(epochs):
        raise AssertionError("trained again")

    monkeypatch.setattr(digits_clf, "train_classifier", refuse)
    again = digits_clf.load_classifier(tmp_path, epochs=1)
    assert torch.equal(torch.get_rng_state(), state)  # so did reading it back
    assert again.accuracy == first.accuracy
    x = torch.rand(50, 1, 16, 16) * 2 - 1
    assert torch.equal(again.probs(x), first.probs(x))
    with pytest.raises(AssertionError, match="trained again"):  # another recipe, another file
        digits_clf.load_classifier(tmp_path, epochs=2)


def test_a_short_run_logs_the_protocol_and_draws_samples(make_cfg, tmp_path, capsys):
    cfg = make_cfg("data=stacked_digits", *TINY, "steps=5", "eval_every=5",
                   f"eval.cache_dir={tmp_path / 'cache'}")
    assert cfg.data.shape == [3, 16, 16] and not cfg.model.conditional
    assert cfg.data.clusters is None and cfg.eval.n_samples == 300
    metrics = train(cfg)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "completed" and written["steps"] == 5
    for key in ("eval/modes", "eval/reverse_kl", "eval/class_kl", "eval/confident"):
        assert written[key] == pytest.approx(metrics[key])
    assert 1 <= written["eval/modes"] <= 300 and 0 <= written["eval/reverse_kl"] <= math.log(1000)
    # The channels' dependence, the rest of the reverse KL, is a KL: never negative.
    assert 0 <= written["eval/class_kl"] <= written["eval/reverse_kl"] + 1e-12
    (line,) = [li for li in capsys.readouterr().out.splitlines() if "class-share KL" in li]
    assert line.split()[-1] == f"{written['eval/class_kl']:.4f}"
    assert written["eval/protocol"]["n_fake"] == 300
    assert 0.5 < written["eval/protocol"]["classifier_accuracy"] < 1
    header = (tmp_path / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"eval/modes", "eval/reverse_kl", "eval/class_kl", "eval/confident"} <= set(header)
    assert (tmp_path / "samples.png").stat().st_size > 0


def test_a_stopped_run_resumes_the_same_stream(make_cfg, tmp_path):
    """SIGTERM after batch 3, resume: the weights, optimiser states and figures equal the
    run that never stopped (the stacked stream continues where it was)."""
    from tests.test_reliability import _assert_same_state
    from train import TrainingInterrupted

    common = ["data=stacked_digits", *TINY, "steps=6", "ckpt_every=2", "eval_every=6",
              "data.batch_size=8", f"eval.cache_dir={tmp_path / 'cache'}"]
    full = train(make_cfg(*common, f"out_dir={tmp_path / 'full'}"))
    with pytest.raises(TrainingInterrupted):
        train(make_cfg(*common, f"out_dir={tmp_path / 'first'}",
                       "+callbacks.sig._target_=tests.test_reliability.SignalAt",
                       "+callbacks.sig.batch=3"))
    resumed = train(make_cfg(*common, f"out_dir={tmp_path / 'resumed'}",
                             f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"))
    _assert_same_state(tmp_path / "full" / "checkpoints" / "last.ckpt",
                       tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert {k: v for k, v in resumed.items() if k.startswith("eval/")} == {
        k: v for k, v in full.items() if k.startswith("eval/")}


@pytest.mark.parametrize("override, message", [
    ("eval.n_samples=0", "eval.n_samples must be >= 1, got 0"),
    ("eval.n_samples=many", "eval.n_samples must be an integer, got 'many'"),
    ("eval.confidence=1.5", "eval.confidence must be a number in (0, 1), got 1.5"),
    ("eval.classifier_epochs=0", "eval.classifier_epochs must be >= 1, got 0"),
    ("data.clusters=5", "data.clusters: stacked_digits trains unconditionally on its 1,000 "
                        "modes; leave data.clusters=null"),
    ("data.shape=[1,16,16]", "data.shape: stacked digits have 3 channels (one digit each), "
                             "got [1, 16, 16]"),
])
def test_bad_values_are_one_line_naming_the_key(make_cfg, override, message):
    assert refusal(make_cfg("data=stacked_digits", override)) == message


def test_stacked_mnist_keeps_the_image_evaluator(make_cfg):
    cfg = make_cfg("data=stacked_mnist", fast=False)
    assert cfg.eval._target_ == "ganzoo.eval.images.ImageEvaluator"
    assert make_cfg("data=stacked_digits", fast=False).eval.n_samples == 26_000


def _bench():
    from .conftest import load_benchmark

    return load_benchmark("stacked_digits")


def test_benchmark_table_keeps_diverged_runs_as_rows():
    bench = _bench()
    done = {"status": "completed", "steps": 4000, "time_s": 600.0}
    rows = [{"config": "pack2", "seed": 0, **done, "eval/modes": 1000.0,
             "eval/reverse_kl": 0.02, "eval/confident": 90.0},
            {"config": "pack2", "seed": 1, **done, "eval/modes": 998.0,
             "eval/reverse_kl": 0.04, "eval/confident": 80.0},
            {"config": "wgan_gp", "seed": 0, "status": "diverged", "steps": 300,
             "time_s": 60.0, "reason": "train/d_loss became nan or inf",
             "eval/modes": None, "eval/reverse_kl": None, "eval/confident": None}]
    real = {"eval/modes": 1000.0, "eval/reverse_kl": 0.019, "eval/confident": 98.8,
            "eval/class_kl": 0.0004}
    table = bench.table(rows, ["pack2", "wgan_gp", "extra"], "loss=rpgan", real, 26000)
    # Runs without eval/class_kl (from before the key) leave the column "–".
    assert ("| PacDCGAN2 (non-saturating) | 2 | 4000 | 999.0 ± 1.4 | 0.030 ± 0.014 | – | "
            "85.0 ± 7.1 | 600 |") in table
    assert "| DCGAN, WGAN-GP | 0 + 1 diverged | | – | – | – | – | |" in table
    assert "extra" not in table.split("real stacked")[0]  # no runs, no row
    assert ("| *real stacked digits, 26000 samples* | | | 1000 | 0.019 | 0.000 | 98.8 | |"
            in table)
    assert "| *PacDCGAN2 (Lin et al. 2018), Stacked MNIST* | | | 1000.0 ± 0.0 |" in table
    with_shares = [{**rows[0], "eval/class_kl": 0.01}, {**rows[1], "eval/class_kl": 0.02}]
    assert ("| PacDCGAN2 (non-saturating) | 2 | 4000 | 999.0 ± 1.4 | 0.030 ± 0.014 | "
            "0.015 ± 0.007 | 85.0 ± 7.1 | 600 |") in bench.table(
                with_shares, ["pack2"], "loss=rpgan", real, 26000)
    assert bench._describe(rows[0]) == (
        "  pack2          seed 0  modes 1000  rKL 0.020  confident 90.0%  (600 s)")
    assert bench._describe(with_shares[0]) == (
        "  pack2          seed 0  modes 1000  rKL 0.020  class KL 0.010  confident 90.0%  "
        "(600 s)")
    checks = bench.targets(rows, ["pack2", "wgan_gp"])
    assert [c.endswith("NOT met") for c in checks] == [True, True]
    assert bench.targets(rows[:1], ["pack2"])[0].endswith(": met")


def test_benchmark_writes_the_tracked_results_only_when_asked(tmp_path):
    bench = _bench()
    parse = bench.build_parser().parse_args
    runs, out = bench.output_paths(parse([]), "t")
    assert runs == bench.ROOT / "outputs" / "stacked_digits" / "t" and out == runs / "RESULTS.md"
    assert bench.output_paths(parse(["--update-results"]), "t")[1] == bench.RECORD
    assert parse([]).extra == ("experiment=r3gan model.discriminator.norm=layer prior=mixture "
                               "prior.components=1000 penalty.every=4 lr_decay=none "
                               "optim.d.lr=8e-4 ema.decay=0.998")
    assert (parse([]).steps, parse([]).extra_steps) == (4000, 12000)
    overrides = bench._overrides("extra", 1, 40, 2600, "loss=rpgan penalty=r1r2", tmp_path)
    assert overrides[:3] == ["data=stacked_digits", "loss=rpgan", "penalty=r1r2"]
    assert {"seed=1", "steps=40", "eval.n_samples=2600"} <= set(overrides)
    assert "steps=8" in bench._overrides("wgan_gp", 0, 40, None, "", tmp_path)
    path = tmp_path / "R.md"
    path.write_text("# Benchmark results\n\n## Stacked digits\n\nold\n\n## Other\n\nkept\n")
    bench.write_section(path, "## Stacked digits\n\nnew\n", bench.HEADING)
    assert path.read_text() == ("# Benchmark results\n\n## Stacked digits\n\nnew\n\n"
                                "## Other\n\nkept\n")


def test_benchmark_updates_the_record_only_with_the_full_table():
    bench = _bench()
    parser = bench.build_parser()
    assert bench._check(parser, parser.parse_args(["--update-results"]))[1] == [
        "nonsaturating", "pack2", "wgan_gp", "extra"]
    for partial in (["--configs", "extra"], ["--seeds", "2"], ["--steps", "20"],
                    ["--samples", "2600"]):
        with pytest.raises(SystemExit) as exc:
            bench._check(parser, parser.parse_args(["--update-results", *partial]))
        assert exc.value.code == 2
    assert bench._check(parser, parser.parse_args(["--configs", "extra"]))[1] == ["extra"]


def test_benchmark_refuses_a_runs_dir_of_another_step_budget(tmp_path, capsys):
    bench = _bench()
    run = tmp_path / "wgan_gp" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"status": "completed", "steps": 4}')
    with pytest.raises(SystemExit) as exc:  # 40 steps at k = 5: 8 generator steps, not 4
        bench.main(["--configs", "wgan_gp", "--seeds", "0", "--steps", "40",
                    "--runs-dir", str(tmp_path), "--out", "-"])
    assert exc.value.code == 2
    assert (f"error: --runs-dir: {run} holds a run of 4 generator steps, not 8; choose "
            "another --runs-dir") in capsys.readouterr().err


def test_the_extra_configuration_trains_its_own_steps(tmp_path, capsys):
    bench = _bench()
    run = tmp_path / "extra" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"status": "completed", "steps": 40}')
    with pytest.raises(SystemExit) as exc:  # --steps is the other rows'; 30 are asked here
        bench.main(["--configs", "extra", "--seeds", "0", "--steps", "40", "--extra-steps",
                    "30", "--runs-dir", str(tmp_path), "--out", "-"])
    assert exc.value.code == 2
    assert (f"error: --runs-dir: {run} holds a run of 40 generator steps, not 30; choose "
            "another --runs-dir") in capsys.readouterr().err
