"""Pieces the image architectures share: shape checks, normalisation, spectral norm.

Conditional batch norm follows de Vries et al. 2017 / Dumoulin et al. 2017 (a class
embedding gives the scale and shift); the projection head follows Miyato & Koyama 2018,
"cGANs with Projection Discriminator": D(x, y) = psi(phi(x)) + <embed(y), phi(x)>.
Spectral normalisation is Miyato et al. 2018, through torch's parametrization.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def image_size(arch: str, data_shape: Sequence[int], sizes: Sequence[int]) -> tuple[int, int]:
    """(channels, side) of a square image shape the architecture can make, else ValueError."""
    shape = [int(s) for s in data_shape]
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] in sizes:
        return shape[0], shape[1]
    names = [f"{s}x{s}" for s in sizes]
    allowed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    raise ValueError(f"model: {arch} generates {allowed} images, data.shape is {shape}")


def class_count(arch: str, conditional: bool, num_classes: int | None) -> int:
    """Number of classes a conditional model uses (0: unconditional)."""
    if not conditional:
        return 0
    if not num_classes or num_classes < 1:
        raise ValueError(f"model.conditional: {arch} needs labelled data, and the data "
                         "config declares no classes (data.num_classes)")
    return int(num_classes)


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectrally normalise every convolution, linear map and embedding in ``module``."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            spectral_norm(m)
    return module


def norm2d(kind: str, channels: int, where: str) -> nn.Module:
    """batch (Ioffe & Szegedy 2015), layer (Ba et al. 2016, over C, H, W) or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # one group: layer norm with per-channel affine
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"{where}.norm: unknown {kind!r}; choose batch, layer or none")


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class; plain BN if unconditional."""

    def __init__(self, channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.embed = nn.Embedding(num_classes, 2 * channels)
            with torch.no_grad():  # start as the identity: gamma = 1, beta = 0
                self.embed.weight[:, :channels].fill_(1.0)
                self.embed.weight[:, channels:].zero_()

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # (N, C, H, W)
        h = self.bn(x)
        if not self.num_classes:
            return h
        gamma, beta = self.embed(y).chunk(2, dim=1)  # (N, C) each
        return gamma[:, :, None, None] * h + beta[:, :, None, None]


class ProjectionHead(nn.Module):
    """Unbounded logit from features phi (N, F): linear, plus the class projection."""

    def __init__(self, features: int, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes else None

    def forward(self, phi: Tensor, y: Tensor | None = None) -> Tensor:  # (N, F) -> (N,)
        out = self.linear(phi)[:, 0]
        if self.embed is not None:
            out = out + (self.embed(y) * phi).sum(dim=1)
        return out


def check_labels(num_classes: int, y: Tensor | None, who: str) -> None:
    if num_classes and y is None:
        raise ValueError(f"{who} is class-conditional and needs labels y")


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """The module in eval mode for the block (batch norm reads its running statistics and
    updates none), its previous mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def has_batch_statistics(module: nn.Module) -> bool:
    """True if the module's output for one sample depends on the rest of its batch."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def draw_labels(n: int, num_classes: int, prior: Tensor | None = None,
                generator: torch.Generator | None = None, device=None,
                in_turn: bool = False) -> Tensor | None:
    """n labels for a conditional generator of ``num_classes`` classes (None if it has
    none): drawn by ``prior`` (the k-means clusters' shares) when given, else the
    classes 0, 1, ... in turn (``in_turn``), else uniform draws."""
    if not num_classes:
        return None
    if prior is not None:
        return torch.multinomial(prior, n, replacement=True, generator=generator)
    if in_turn:
        return torch.arange(n, device=device) % num_classes
    return torch.randint(num_classes, (n,), device=device, generator=generator)


def check_models(generator: nn.Module, discriminator: nn.Module, data_shape: Sequence[int],
                 penalty: str | None = None) -> None:
    """Refuse, before training, a G, D and data that cannot work together.

    ``penalty`` names the gradient penalty the critic is trained with, if any: batch norm
    makes each sample's critic gradient depend on the rest of its batch, which breaks the
    per-sample penalty (Gulrajani et al. 2017, Sec. 4), so such a critic is refused.
    """
    data = [int(s) for s in data_shape]
    for who, net in (("generator", generator), ("discriminator", discriminator)):
        shape = getattr(net, "data_shape", None)
        if shape is not None and list(shape) != data:
            raise ValueError(f"model.{who}: the {who} is built for images of shape "
                             f"{list(shape)}, data.shape is {data}")
    g_classes = getattr(generator, "num_classes", 0)
    d_classes = getattr(discriminator, "num_classes", 0)
    if g_classes != d_classes:
        raise ValueError(f"model.conditional: the generator has {g_classes} classes, the "
                         f"discriminator {d_classes}")
    if penalty and has_batch_statistics(discriminator):
        raise ValueError(f"model.discriminator: batch norm in a critic trained with a "
                         f"gradient penalty ({penalty}) ties each sample's gradient to its "
                         f"batch; use layer norm or none (dcgan: model.discriminator.norm=layer)")


def check_class_count(generator: nn.Module, count: int, source: str) -> None:
    """A conditional generator must have as many classes as the data has labels: ``count``,
    from the setting ``source`` (e.g. ``"data.clusters=20"``)."""
    g_classes = getattr(generator, "num_classes", 0)
    if g_classes and count and g_classes != count:
        raise ValueError(f"model.generator.num_classes: the conditional model has "
                         f"{g_classes} classes, the data's labels {count} ({source})")
