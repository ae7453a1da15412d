"""Image datasets through torchvision (and scikit-learn's digits), scaled to [-1, 1].

``digits`` (scikit-learn's 1,797 8x8 digits, bundled: no download), ``mnist``,
``fashion_mnist``, ``cifar10``, ``cifar100``, ``stacked_mnist`` (three MNIST digits as
the RGB channels: 1,000 modes, Metz et al. 2017 / Srivastava et al. 2017), ``celeba``
(aligned faces, resized and centre-cropped, as in Radford et al. 2016) and
``imagefolder`` (any folder tree of images; sub-folders of the root are classes).

Batches are ``(images, labels)``. Images travel as uint8 and become floats in [-1, 1]
on the training device (``on_after_batch_transfer``). With ``on_device=true`` the whole
training set is one uint8 tensor on that device, and each batch is an index draw from it
with the horizontal flip done there too: no DataLoader, PIL or host copy per step. Batch
i is a pure function of (seed, i), so a resumed run continues the same stream.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torchvision
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from ganzoo.config import ConfigError, require_int
from ganzoo.data.base import GANDataModule
from ganzoo.data.streams import Block, DeviceBatches, cluster_labels

log = logging.getLogger("ganzoo")

# Where each dataset's files live under data.root, and how a person gets them.
WHERE = {
    "mnist": ("MNIST/raw", "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
              "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
              "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": ("FashionMNIST/raw", "train-images-idx3-ubyte.gz, "
                      "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                      "t10k-labels-idx1-ubyte.gz",
                      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    "cifar10": ("cifar-10-batches-py", "data_batch_1..5, test_batch, batches.meta",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it there)"),
    "cifar100": ("cifar-100-python", "train, test, meta",
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (extract it there)"),
    "celeba": ("celeba", "img_align_celeba/, list_eval_partition.txt, list_attr_celeba.txt, "
               "identity_CelebA.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt",
               "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"),
}
WHERE["stacked_mnist"] = WHERE["mnist"]


def _missing(name: str, root: Path, download: bool, exc: Exception) -> ConfigError:
    folder, files, url = WHERE[name]
    how = (f"downloading failed ({exc})" if download else
           "data.download=true fetches it where the network allows")
    return ConfigError(f"data: {name} not found: expected {files} in {root / folder}; "
                       f"get them from {url} or {how} (data.root or GANZOO_DATA moves the "
                       f"folder)")


def _gunzip_idx(raw: Path) -> None:
    """torchvision reads unpacked idx files; unpack any .gz the user copied in."""
    from torchvision.datasets.utils import extract_archive

    for gz in raw.glob("*-ubyte.gz") if raw.is_dir() else []:
        if not gz.with_suffix("").exists():
            extract_archive(str(gz), str(raw))


def _mnist_like(name: str, root: Path, download: bool) -> tuple[Tensor, Tensor]:
    cls = torchvision.datasets.FashionMNIST if name == "fashion_mnist" else \
        torchvision.datasets.MNIST
    _gunzip_idx(root / WHERE[name][0])
    try:
        ds = cls(str(root), train=True, download=download)
    except (RuntimeError, OSError) as exc:
        raise _missing(name, root, download, exc) from None
    return ds.data[:, None], torch.as_tensor(ds.targets)  # (N, 1, 28, 28) uint8, (N,)


def _cifar(name: str, root: Path, download: bool) -> tuple[Tensor, Tensor]:
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        ds = cls(str(root), train=True, download=download)
    except (RuntimeError, OSError) as exc:
        raise _missing(name, root, download, exc) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
    return images, torch.as_tensor(ds.targets)


def _digits() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()  # pixel values 0..16
    images = torch.from_numpy(digits.images).mul(255 / 16).round().to(torch.uint8)
    return images[:, None], torch.from_numpy(digits.target).long()  # (1797, 1, 8, 8)


def _stacked_mnist(root: Path, download: bool, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """n images whose R, G, B channels are three random MNIST digits; label 100a+10b+c."""
    digits, labels = _mnist_like("stacked_mnist", root, download)
    idx = torch.randint(digits.shape[0], (n, 3), generator=torch.Generator().manual_seed(seed))
    images = digits[idx, 0]  # (n, 3, 28, 28)
    return images, labels[idx] @ torch.tensor([100, 10, 1])


class _ImageTree(torchvision.datasets.ImageFolder):
    """ImageFolder that also takes a flat folder (one class) and counts unreadable files."""

    def __init__(self, root: str, transform, skip_bad_files: bool) -> None:
        self.bad: list[str] = []
        self.skip_bad_files = skip_bad_files
        super().__init__(root, transform=transform, is_valid_file=self._readable)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        with os.scandir(directory) as entries:
            flat = not any(e.is_dir() for e in entries)
        if flat:
            return [""], {"": 0}  # a flat folder: every image in class 0
        return super().find_classes(directory)

    def _readable(self, path: str) -> bool:
        from PIL import Image, UnidentifiedImageError

        ok = torchvision.datasets.folder.has_file_allowed_extension(
            path, torchvision.datasets.folder.IMG_EXTENSIONS)
        if ok:
            try:
                with Image.open(path) as img:
                    img.verify()
            except (OSError, UnidentifiedImageError, SyntaxError):
                ok = False
        if not ok:
            if not self.skip_bad_files:
                raise ConfigError(f"data: {path} is not a readable image "
                                  "(data.skip_bad_files=true skips such files)")
            self.bad.append(path)
        return ok


class ImageDataModule(GANDataModule):
    """One image dataset at ``shape`` = [channels, side, side], batches of (uint8, label)."""

    def __init__(self, name: str, shape: Sequence[int], root: str = "data",
                 batch_size: int = 64, n_train: int | None = None, n_eval: int = 10_000,
                 seed: int = 0, download: bool = False, on_device: bool = True,
                 flip: bool = False, num_classes: int = 0, num_workers: int = 2,
                 skip_bad_files: bool = True, clusters: int | None = None) -> None:
        super().__init__()
        loaders = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100",
                   "stacked_mnist", "celeba", "imagefolder")
        if name not in loaders:
            raise ValueError(f"data.name: unknown image dataset {name!r}; choose one of "
                             f"{', '.join(loaders)}")
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or shape[1] != shape[2] or shape[0] not in (1, 3):
            raise ValueError(f"data.shape: images are [channels, side, side] with 1 or 3 "
                             f"channels, got {list(shape)}")
        require_int("data.batch_size", batch_size, 1)
        require_int("data.n_eval", n_eval, 1)
        if n_train is not None:
            require_int("data.n_train", n_train, 1)
        self.name, self.shape, self.root = name, shape, Path(root).expanduser()
        self.batch_size, self.n_train, self.n_eval, self.seed = batch_size, n_train, n_eval, seed
        self.download, self.on_device, self.flip = download, on_device, flip
        self.dataset_classes, self.num_workers = num_classes, num_workers
        self.skip_bad_files = skip_bad_files
        if clusters is not None:
            require_int("data.clusters", clusters, 2)
        self.clusters = clusters
        # With clusters: each cluster's share of the training images (the generator's
        # label distribution when sampling); None when the labels are the dataset's.
        self.label_prior: Tensor | None = None
        self.images: Tensor | None = None  # (N, C, S, S) uint8, when held in memory
        self.labels: Tensor | None = None  # (N,)
        self.dataset: Dataset | None = None  # streamed otherwise
        self.batches: DeviceBatches | None = None
        self._start = 0  # batches already trained on (set by seek on resume)

    @property
    def num_classes(self) -> int:
        """How many labels batches carry: the k-means clusters (data.clusters) when set,
        else the dataset's own classes."""
        return self.clusters or self.dataset_classes

    # --- loading --------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None or self.dataset is not None:
            return
        if self.name in ("celeba", "imagefolder"):
            self.dataset = self._file_dataset()
            if self.on_device:  # decode once into one tensor
                loader = DataLoader(self.dataset, batch_size=256, num_workers=self.num_workers)
                parts = list(loader)
                self.images = torch.cat([x for x, _ in parts])
                self.labels = torch.cat([torch.as_tensor(y) for _, y in parts])
                self.dataset = None
        else:
            images, labels = self._tensors()
            channels, side = self.shape[0], self.shape[1]
            if images.shape[1] != channels:
                raise ConfigError(f"data.shape: {self.name} images have {images.shape[1]} "
                                  f"channel(s), data.shape is {list(self.shape)}")
            if images.shape[-1] != side:
                images = v2.functional.resize(images, [side, side], antialias=True)
            self.images, self.labels = images.contiguous(), labels.long()
        if self.clusters and self.images is None:
            raise ConfigError(f"data.clusters needs the images in memory: set "
                              f"data.on_device=true for {self.name}")
        if self.images is not None:
            self.images, self.labels = self.images[: self.n_train], self.labels[: self.n_train]
            if self.clusters:
                self.labels, self.label_prior = cluster_labels(self.images, self.clusters,
                                                               self.seed)
            elif self.dataset_classes and len(self.labels) and (
                    int(self.labels.max()) >= self.dataset_classes or int(self.labels.min()) < 0):
                raise ConfigError(f"data.num_classes={self.dataset_classes}, but the {self.name} "
                                  f"labels run from {int(self.labels.min())} to "
                                  f"{int(self.labels.max())}")
            self.batches = DeviceBatches(self.images, self.labels, self.batch_size,
                                         self.seed + 1, self.flip)
            self.batches.seek(self._start)

    def _tensors(self) -> tuple[Tensor, Tensor]:
        if self.name == "digits":
            return _digits()
        if self.name in ("mnist", "fashion_mnist"):
            return _mnist_like(self.name, self.root, self.download)
        if self.name in ("cifar10", "cifar100"):
            return _cifar(self.name, self.root, self.download)
        return _stacked_mnist(self.root, self.download, self.n_train or 60_000, self.seed)

    def _file_dataset(self) -> Dataset:
        side = self.shape[1]
        steps = [v2.PILToTensor(), v2.Resize(side, antialias=True), v2.CenterCrop(side)]
        if self.shape[0] == 1:
            steps.append(v2.Grayscale(1))
        if self.flip and not self.on_device:
            steps.append(v2.RandomHorizontalFlip())
        transform = v2.Compose(steps)
        if self.name == "celeba":
            try:
                return torchvision.datasets.CelebA(str(self.root), split="train",
                                                   target_type="identity",
                                                   transform=transform, download=self.download)
            except (RuntimeError, OSError) as exc:
                raise _missing("celeba", self.root, self.download, exc) from None
        if not self.root.is_dir():
            raise ConfigError(f"data: imagefolder found no folder {self.root}; set data.root "
                              "to a folder of images (its sub-folders, if any, are classes)")
        try:
            tree = _ImageTree(str(self.root), transform, self.skip_bad_files)
        except FileNotFoundError:
            raise ConfigError(f"data: no readable images under {self.root}") from None
        if tree.bad:
            log.warning("data: skipped %d of %d files under %s that are not readable "
                        "images (e.g. %s)", len(tree.bad), len(tree.bad) + len(tree),
                        self.root, tree.bad[0])
        return tree

    # --- the training stream --------------------------------------------------------------

    def train_dataloader(self):
        if self.batches is not None:
            if self.trainer is not None:  # data.batch_size is per device
                self.batches.rank = self.trainer.global_rank
                self.batches.world_size = self.trainer.world_size
                if self.on_device:
                    self.batches.to(self.trainer.strategy.root_device)
            return self.blocks(self.batches)
        full = len(self.dataset) >= self.batch_size  # else one short batch per epoch
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                          drop_last=full, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, Block):
            return Block(self.on_after_batch_transfer(b, dataloader_idx) for b in batch)
        images, labels = batch
        return images.float().div(127.5).sub(1.0), labels  # uint8 -> [-1, 1]

    def seek(self, n_batches: int) -> None:
        """Continue the in-memory stream after ``n_batches`` batches (used on resume)."""
        self._start = n_batches  # kept for a stream not built yet
        if self.batches is not None:
            self.batches.seek(n_batches)

    def real_images(self, n: int, batch_size: int = 200) -> Iterator[Tensor]:
        """uint8 batches (B, C, H, W) of n fixed training images (all, if fewer), drawn
        without replacement by a fixed permutation, the same for every run and seed."""
        self.setup()
        total = self.images.shape[0] if self.images is not None else len(self.dataset)
        idx = torch.randperm(total, generator=torch.Generator().manual_seed(0))[:n]
        if self.images is not None:
            for chunk in idx.split(batch_size):
                yield self.images[chunk.to(self.images.device)]
            return
        subset = torch.utils.data.Subset(self.dataset, idx.tolist())
        for x, _ in DataLoader(subset, batch_size=batch_size, num_workers=self.num_workers):
            yield x
