"""Sample quality on real images, offline: a GAN trained on scikit-learn's digits.

Trains the default configuration for ``data=digits`` (plus any Hydra overrides given on
the command line), then judges its samples with ganzoo's digits classifier
(``ganzoo.metrics.digits``: a small CNN on the 16x16 images the GAN saw, fitted on a
fixed 80% of them and checked on the other 20%, trained once and cached in
``$GANZOO_CACHE``, default ``~/.cache/ganzoo``). The generator judged is the one the
run samples with: its weight average (EMA) when the model keeps one. Prints, for real
held-out digits and for generated ones: the share classified with confidence >= 0.9, the
classes hit, and the KL divergence of the predicted class distribution to uniform (log
10: a single class).

    uv run python benchmarks/digits_quality.py                # the default configuration
    uv run python benchmarks/digits_quality.py steps=500 seed=1
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganzoo.metrics import kl_to_uniform  # noqa: E402

N_SAMPLES = 2000
CONFIDENT = 0.9


def figures(probs: np.ndarray) -> dict[str, float]:
    """Confident share, classes hit and KL(predicted class distribution || uniform)."""
    pred = probs.argmax(1)
    counts = np.bincount(pred, minlength=10)
    freq = counts / len(pred)
    kl = kl_to_uniform(torch.from_numpy(counts))
    return {"confident": float((probs.max(1) >= CONFIDENT).mean()),
            "classes": int((freq > 0).sum()), "kl_uniform": kl, "freq": freq}


def predict(clf, x: torch.Tensor) -> np.ndarray:
    return clf.probs(x).numpy()  # (N, 10) class probabilities


def main(overrides: list[str]) -> None:
    from ganzoo.metrics.digits import load_classifier, real_digits, split
    from ganzoo.sample import load_generator, sample
    from train import train

    out = Path(tempfile.mkdtemp(prefix="digits_quality_"))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["data=digits", f"out_dir={out}",
                                          "trainer.enable_progress_bar=false", *overrides])
    start = time.perf_counter()
    metrics = train(cfg)
    wall = time.perf_counter() - start

    # The classifier sees exactly what the GAN saw: the 16x16 images in [-1, 1].
    clf = load_classifier(os.environ.get("GANZOO_CACHE", "~/.cache/ganzoo"))
    x, y = real_digits()
    held = split(len(y))[1]
    real = figures(predict(clf, x[held]))
    accuracy = clf.accuracy

    G = load_generator(out / "checkpoints" / "last.ckpt")  # its EMA weights, if kept
    # Trained on the digit labels, a conditional generator is asked for each class in
    # turn (200 of each); trained on k-means clusters (data.clusters), its clusters are
    # drawn by their shares of the training images, as any sample of it is.
    y = None
    if G.num_classes and G.label_prior is None:
        y = torch.arange(N_SAMPLES) % G.num_classes
    fake = sample(G, N_SAMPLES, seed=123, labels=y).clamp(-1, 1)
    gen = figures(predict(clf, fake))

    labels = ("unconditional" if not G.num_classes else
              f"{G.num_classes} k-means clusters as labels" if G.label_prior is not None
              else "conditional on the digit labels")
    print(f"\ndigits quality · {cfg.model.name} · {cfg.loss._target_.rsplit('.', 1)[-1]} · "
          f"{labels} · {metrics['steps']} generator steps · seed {cfg.seed}")
    print(f"  train() wall time            {wall:.1f} s (run directory {out})")
    print(f"  classifier on held-out real  accuracy {accuracy:.3f}, "
          f"confident {real['confident']:.3f}, KL to uniform {real['kl_uniform']:.4f}")
    print(f"  {N_SAMPLES} generated samples")
    print(f"    classes hit                {gen['classes']} / 10")
    print(f"    KL(classes || uniform)     {gen['kl_uniform']:.4f}   (target <= 0.1)")
    print(f"    confidence >= {CONFIDENT}          {100 * gen['confident']:.1f} %   "
          f"(target >= 80 %)")
    print("    class shares               " + " ".join(f"{f:.3f}" for f in gen["freq"]))


if __name__ == "__main__":
    main(sys.argv[1:])
