"""A small digits classifier: what judges generated digits (``eval=stacked``, and
``benchmarks/digits_quality.py``).

Two convolutions and a linear read-out (about 29,000 weights) on scikit-learn's digits at
16x16 in [-1, 1], as the GANs see them, trained with Adam 1e-3 from seed 0 on a fixed 80 %
of the 1,797 images (a permutation from seed 0) and checked on the other 20 %. As the
pretrained MNIST classifier of the Stacked-MNIST protocol (Srivastava et al. 2017,
Sec. 5.2), it is trained once: the first use writes its weights and held-out accuracy to
``<cache_dir>/digits-classifier-16px-e<epochs>.pt``, later uses read them back.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.config import ConfigError, require_int

log = logging.getLogger("ganzoo")

SIDE = 16  # the classifier's input: 16x16 (other sizes are resized to it)
SEED = 0  # the split's permutation and the training's initialisation and batches
FIT_SHARE = 0.8
EPOCHS = 30
VERSION = 1  # bumped when the architecture or recipe changes (a new cache file)


def make_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 8, 8)
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 64, 4, 4)
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


def split(n: int) -> tuple[Tensor, Tensor]:
    """The fixed (fit, held-out) index split of n images: 80 % / 20 %."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SEED))
    cut = int(FIT_SHARE * n)
    return order[:cut], order[cut:]


def real_digits() -> tuple[Tensor, Tensor]:
    """The digits as the classifier sees them: (1797, 1, 16, 16) in [-1, 1], classes."""
    from ganzoo.data.stacked import digits

    images, labels = digits(SIDE)
    return images.float().div(127.5).sub(1.0), labels


def fit(x: Tensor, y: Tensor, epochs: int = EPOCHS) -> nn.Module:
    """Train the net on (x, y): Adam 1e-3, batches of 64, seed 0. The global random state
    is left as it was (a run's training noise does not depend on whether the classifier
    was cached)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        net = make_net()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in range(epochs):
            for idx in torch.randperm(len(y)).split(64):
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return net.eval().requires_grad_(False)


@dataclass
class DigitsClassifier:
    """The trained net and its held-out accuracy; ``probs`` classifies images."""

    net: nn.Module
    accuracy: float
    epochs: int
    path: Path | None = None

    def __post_init__(self) -> None:
        self.net.to(memory_format=torch.channels_last)

    @property
    def name(self) -> str:
        return f"digits-cnn-{SIDE}px-e{self.epochs} (held-out accuracy {self.accuracy:.3f})"

    @torch.inference_mode()
    def probs(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Class probabilities (N, 10) of single-channel images (N, 1, H, W) in [-1, 1].
        Batches of a few hundred in channels-last layout: on a CPU 3-5x faster than one
        large NCHW batch (78,000 channels in about 5 s on one core)."""
        device = next(self.net.parameters()).device
        out = []
        for chunk in x.split(batch_size):
            chunk = chunk.to(device, torch.float32)
            if chunk.shape[-1] != SIDE:
                chunk = F.interpolate(chunk, size=(SIDE, SIDE), mode="bilinear",
                                      antialias=True, align_corners=False)
            out.append(torch.softmax(self.net(chunk), dim=1))
        return torch.cat(out)

    def to(self, device: torch.device | str) -> DigitsClassifier:
        self.net.to(device, memory_format=torch.channels_last)
        return self


def cache_file(cache_dir: str | Path, epochs: int) -> Path:
    return Path(cache_dir).expanduser() / f"digits-classifier-{SIDE}px-e{epochs}-v{VERSION}.pt"


def train_classifier(epochs: int = EPOCHS) -> DigitsClassifier:
    """Train on the fixed 80 % and measure accuracy on the other 20 %."""
    x, y = real_digits()
    fit_idx, held = split(len(y))
    net = fit(x[fit_idx], y[fit_idx], epochs)
    with torch.inference_mode():
        accuracy = float((net(x[held]).argmax(1) == y[held]).float().mean())
    return DigitsClassifier(net, accuracy, epochs)


def load_classifier(cache_dir: str | Path, epochs: int = EPOCHS) -> DigitsClassifier:
    """The cached classifier of ``epochs`` epochs, trained and written on first use."""
    require_int("eval.classifier_epochs", epochs, 1)
    path = cache_file(cache_dir, epochs)
    if path.is_file():
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
            with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten:
                net = make_net()  # drawing them must not move the run's random stream
            net.load_state_dict(record["state_dict"])
            return DigitsClassifier(net.eval().requires_grad_(False),
                                    float(record["accuracy"]), epochs, path)
        except Exception as exc:  # noqa: BLE001 - a damaged cache: say which, retrain
            log.info("eval: %s is unreadable (%s); training the classifier again", path, exc)
    log.info("eval: training the digits classifier (%d epochs, once: about a second per "
             "epoch on a CPU)", epochs)
    clf = train_classifier(epochs)
    _save(clf, path)
    log.info("eval: trained the digits classifier: held-out accuracy %.3f (20 %% of the "
             "digits); cached in %s", clf.accuracy, path)
    clf.path = path
    return clf


def _save(clf: DigitsClassifier, path: Path) -> None:
    from ganzoo.storage import StorageError, atomic_write

    buffer = io.BytesIO()
    torch.save({"state_dict": clf.net.state_dict(), "accuracy": clf.accuracy,
                "epochs": clf.epochs, "side": SIDE, "seed": SEED, "fit_share": FIT_SHARE,
                "version": VERSION}, buffer)
    try:
        atomic_write(path, buffer.getvalue())
    except StorageError as exc:
        raise ConfigError(f"eval.cache_dir: {exc}") from exc
