"""Image quality through torchmetrics: FID (Heusel et al. 2017), KID (Binkowski et al.
2018) and the Inception Score (Salimans et al. 2016).

Each image goes through the feature extractor once: Inception v3 with the FID weights
(torchmetrics' ``NoTrainInceptionV3``, from torch-fidelity) gives its 2,048 pool features
to FID and KID and its logits to IS. The features of the real images are computed once
and cached on disk (``metrics.cache_dir``), keyed by dataset, resolution, split, sample
count and feature extractor, so later evaluations and later runs only pay for the
generated images.

A custom extractor (any ``nn.Module`` mapping uint8 images (N, 3, H, W) to features
(N, d), or to a pair (features, logits)) replaces Inception, as torchmetrics allows.

Under DDP the generated images are sharded over the ranks: each rank generates and
extracts every world_size-th batch (batch i from noise seed seed + i, so the images are
those one process would make), the features are gathered on rank 0, and rank 0 alone
computes the scores (the metrics themselves do not sync across processes) while the
other ranks go on to their next gradient all-reduce.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.metrics.caveats import SampleSizeCaveats

log = logging.getLogger("ganzoo")

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
RESIZE_MODES = {
    "antialias": "bilinear with antialiasing to 299x299 (torchmetrics' default)",
    "tf1": "bilinear as TensorFlow 1 to 299x299 (TTUR / torch-fidelity reference)",
}
CACHE_VERSION = 1


def to_uint8_rgb(x: Tensor) -> Tensor:
    """Images in [-1, 1] (N, C, H, W) -> uint8 (N, 3, H, W), exactly inverting the data's
    uint8 -> [-1, 1] map; grey images are repeated over three channels."""
    if x.dtype != torch.uint8:
        x = x.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class InceptionFeatures(nn.Module):
    """torchmetrics' FID Inception v3, returning pool features and logits in one pass."""

    def __init__(self, weights: str | None = None, resize: str = "antialias") -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=weights,
                                      antialias=resize == "antialias")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pool, logits = self.net._torch_fidelity_forward(x)  # (N, 2048), (N, 1008)
        return pool.reshape(x.shape[0], -1), logits.reshape(x.shape[0], -1)


class _Precomputed(nn.Module):
    """The 'extractor' handed to torchmetrics: features arrive already extracted."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def load_inception(weights: str | None, resize: str) -> InceptionFeatures | None:
    """The Inception extractor, or None (with one message) if its weights cannot be had."""
    try:
        return InceptionFeatures(weights, resize)
    except (OSError, RuntimeError) as exc:  # no network, a refused or truncated download
        if weights is not None:
            from ganzoo.config import ConfigError

            raise ConfigError(f"metrics.inception_weights: {weights} is not a readable copy "
                              f"of {INCEPTION_FILE} ({exc})") from None
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

        hub = Path(torch.hub.get_dir()) / "checkpoints"
        log.warning("metrics: FID, KID and IS are off for this run: the Inception weights "
                    "could not be downloaded (%s). Download %s into %s, or pass "
                    "metrics.inception_weights=/path/to/%s", _one_line(exc), URL_INCEPTION_V3,
                    hub, INCEPTION_FILE)
        return None


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fingerprint(module: nn.Module) -> str:
    """A short hash of a module's weights: a retrained extractor gets a new cache entry."""
    h = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        buf = io.BytesIO()
        torch.save(tensor.detach().cpu(), buf)
        h.update(buf.getvalue())
    return h.hexdigest()[:12]


class ImageMetrics:
    """FID, KID and IS of a GAN's generator against a datamodule's real images.

    ``real_images(n)`` on the datamodule yields uint8 batches (B, C, H, W) of n fixed
    real images; ``module.generate`` draws the generated ones from fixed noise.
    """

    def __init__(self, datamodule, extractor: nn.Module, extractor_name: str,
                 resize: str = "none", fid: bool = True, kid: bool = True,
                 inception_score: bool = True, n_samples: int = 10_000,
                 batch_size: int = 200, cache_dir: str | Path | None = None,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, is_splits: int = 10,
                 seed: int = 0) -> None:
        self.dm, self.extractor = datamodule, extractor.eval().requires_grad_(False)
        self.extractor_name, self.resize = extractor_name, resize
        self.fid, self.kid, self.inception_score = fid, kid, inception_score
        self.n_samples, self.batch_size, self.seed = n_samples, batch_size, seed
        self.kid_subsets, self.kid_subset_size, self.is_splits = (kid_subsets, kid_subset_size,
                                                                  is_splits)
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self._real: Tensor | None = None  # (n_real, d) features of the real images
        self.protocol: dict = {}  # how the last scores were measured (metrics.json)
        self.caveats = SampleSizeCaveats()

    # --- features -------------------------------------------------------------------------

    @torch.no_grad()
    def _extract(self, batches: Iterable[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
        """(features, logits) of uint8 image batches; logits is features for a one-output
        extractor, as torchmetrics' IS treats a custom extractor's output."""
        self.extractor.to(device)
        feats, logits = [], []
        for x in batches:
            out = self.extractor(to_uint8_rgb(x.to(device)))
            f, lg = out if isinstance(out, (tuple, list)) else (out, out)
            feats.append(f.reshape(x.shape[0], -1).float())
            logits.append(lg.reshape(x.shape[0], -1).float())
        return torch.cat(feats), torch.cat(logits)

    def cache_key(self) -> dict:
        dm = self.dm
        key = {"version": CACHE_VERSION, "dataset": dm.name, "shape": list(dm.shape),
               "split": "train", "n_train": getattr(dm, "n_train", None),
               "n": self.n_samples, "extractor": self.extractor_name, "resize": self.resize}
        if dm.name in ("imagefolder", "celeba"):
            key["root"] = str(Path(dm.root).resolve())
        return key

    def cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        key = self.cache_key()
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        short = self.extractor_name.split("@")[0].rsplit(".", 1)[-1]
        return self.cache_dir / (f"real-{key['dataset']}-{key['shape'][-1]}px-train-"
                                 f"n{self.n_samples}-{short}-{digest}.pt")

    def real_features(self, device: torch.device) -> Tensor:
        """Features of the real images: from memory, the disk cache, or computed once."""
        if self._real is not None:
            return self._real
        path = self.cache_path()
        if path is not None and path.is_file():
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                if saved.get("key") == self.cache_key():
                    self._real = saved["features"]
                    self.protocol["real_statistics"] = f"read from {path}"
                    return self._real
            except (OSError, RuntimeError, KeyError, AttributeError):
                pass  # unreadable: computed again and rewritten below
        feats, _ = self._extract(self.dm.real_images(self.n_samples, self.batch_size), device)
        self._real = feats.cpu()
        self.protocol["real_statistics"] = "computed"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"key": self.cache_key(), "features": self._real}, tmp)
            os.replace(tmp, path)  # atomic: a concurrent run never reads half a file
            self.protocol["real_statistics"] = f"computed, cached in {path}"
        return self._real

    def fake_batches(self, module, rank: int = 0, world_size: int = 1) -> Iterable[Tensor]:
        """Generated images, batch i from noise seed seed + i: this rank's share of them
        (batches i = rank, rank + world_size, ...)."""
        # A conditional model: its classes in turn; with cluster labels (label_prior)
        # the clusters in proportion to their shares, drawn by generate.
        nc = getattr(module, "num_classes", 0)
        if getattr(module, "label_prior", None) is not None:
            nc = 0
        for i, start in enumerate(range(0, self.n_samples, self.batch_size)):
            if i % world_size != rank:
                continue
            n = min(self.batch_size, self.n_samples - start)
            labels = torch.arange(start, start + n) % nc if nc else None
            yield module.generate(n, seed=self.seed + i, labels=labels)

    def fake_features(self, module) -> tuple[Tensor, Tensor] | None:
        """(features, logits) of all generated images, in batch order, on rank 0; None on
        the other ranks. Under DDP every rank extracts its share and rank 0 gathers them."""
        from ganzoo.distributed import world

        rank, world_size = world()
        feats, logits = self._extract(self.fake_batches(module, rank, world_size),
                                      module.device)
        if world_size == 1:
            return feats, logits
        import torch.distributed as dist

        share = (feats.cpu(), logits.cpu())
        shares: list | None = [None] * world_size if rank == 0 else None
        dist.gather_object(share, shares, dst=0)
        if rank != 0:
            return None
        # Rank r holds batches r, r + W, ...: interleave the shares back into batch order.
        sizes = [min(self.batch_size, self.n_samples - start)
                 for start in range(0, self.n_samples, self.batch_size)]
        parts = [(f.split(sizes[r::world_size]), lg.split(sizes[r::world_size]))
                 for r, (f, lg) in enumerate(shares)]
        order = [parts[i % world_size] for i in range(len(sizes))]
        f = torch.cat([p[0][i // world_size] for i, p in enumerate(order)])
        lg = torch.cat([p[1][i // world_size] for i, p in enumerate(order)])
        return f.to(module.device), lg.to(module.device)

    # --- the metrics ------------------------------------------------------------------------

    def __call__(self, module) -> dict[str, float]:
        # KID and IS draw random subsets from the global generator, and a DataLoader over
        # real images draws its seed there: fork it, so that evaluating never changes the
        # training stream, and seed it, so that scores are reproducible.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            fake = self.fake_features(module)  # every rank takes part
            if fake is None:
                return {}  # DDP: rank 0 computes the scores
            return self._evaluate(module, *fake)

    def _evaluate(self, module, fake: Tensor, logits: Tensor) -> dict[str, float]:
        device = module.device
        real = self.real_features(device).to(device)  # (n_real, d)
        n_real, n_fake = real.shape[0], fake.shape[0]
        figures: dict[str, float] = {}
        with warnings.catch_warnings():
            torch.manual_seed(self.seed)
            # torchmetrics warns on construction that KID and IS keep every feature in
            # memory; that is what they are for here (n_samples bounds it).
            warnings.filterwarnings("ignore", message="Metric `(Kernel Inception Distance|"
                                    "InceptionScore)` will save all extracted features")
            from torchmetrics.image import (
                FrechetInceptionDistance,
                InceptionScore,
                KernelInceptionDistance,
            )

            if self.fid:
                self.caveats.fid(n_real, n_fake, real.shape[1])
                fid = FrechetInceptionDistance(_Precomputed(real.shape[1]),
                                               sync_on_compute=False).to(device)
                fid.update(real, real=True)
                fid.update(fake, real=False)
                figures["eval/fid"] = float(fid.compute())
            if self.kid:
                size = self.caveats.kid_subset_size(self.kid_subset_size, n_real, n_fake)
                kid = KernelInceptionDistance(_Precomputed(real.shape[1]),
                                              subsets=self.kid_subsets, subset_size=size,
                                              sync_on_compute=False).to(device)
                kid.update(real, real=True)
                kid.update(fake, real=False)
                mean, std = kid.compute()
                figures["eval/kid"], figures["eval/kid_std"] = float(mean), float(std)
            if self.inception_score:
                score = InceptionScore(_Precomputed(logits.shape[1]), splits=self.is_splits,
                                       sync_on_compute=False).to(device)
                score.update(logits)
                mean, std = score.compute()
                figures["eval/is"], figures["eval/is_std"] = float(mean), float(std)
        self.protocol.update({"n_real": n_real, "n_fake": n_fake,
                              "extractor": self.extractor_name, "resize": self.resize})
        return figures
