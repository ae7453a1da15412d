"""Sample from a trained generator, without the training stack.

    uv run python -m ganzoo.sample CKPT --n 64 --out grid.png   # or .npy / .pt
    uv run python -m ganzoo.sample CKPT --n 10 --class 3 --out class3.png

    from ganzoo import load_generator
    G = load_generator("outputs/.../checkpoints/last.ckpt")
    x = ganzoo.sample.sample(G, 16, seed=0)

The checkpoint carries the generator's config, so nothing else is needed: no dataset,
no logger, no Lightning. It is read with ``torch.load(weights_only=True)``, and its config
builds only ganzoo's own generators (``ganzoo.nets.GENERATORS``): a checkpoint is data and
never chooses what code runs. The CLI checks its arguments before reading the checkpoint
and writes its output atomically, so a refusal or a failure leaves nothing on disk.

``--class c`` on a model trained on k-means clusters (``data.clusters``, the digits
default; the checkpoint keeps their shares as ``label_prior``) asks for cluster c, a
group of similar training images, not the digit c; the CLI says which it made.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.checkpoint import CheckpointError, build_generator, read_checkpoint
from ganzoo.nets.layers import draw_labels
from ganzoo.priors import build_prior

# Weight prefixes in a checkpoint, most preferred first when EMA weights are wanted.
_EMA_PREFIXES = ("generator_ema.module.", "generator_ema.")
_FORMATS = (".png", ".npy", ".pt")


def load_generator(ckpt_path: str | Path, ema: bool = True,
                   device: str | torch.device = "cpu") -> nn.Module:
    """The trained generator, in eval mode; EMA weights when the run kept them.

    The module gets ``latent_dim``, ``data_shape``, ``num_classes`` (None when
    unconditional) and ``prior`` (its latent prior, ``ganzoo.priors``) attributes from
    the checkpoint.
    """
    device = check_device(device)
    ckpt = read_checkpoint(ckpt_path)
    meta = ckpt["ganzoo"]
    G = build_generator(meta.get("generator") if isinstance(meta, dict) else None, ckpt_path)
    weights = ckpt["state_dict"]
    prefixes = (*_EMA_PREFIXES, "generator.") if ema else ("generator.",)
    prefix = next(p for p in prefixes if p == "generator." or any(
        k.startswith(p) for k in weights))
    state = {k[len(prefix):]: v for k, v in weights.items()
             if k.startswith(prefix) and k != "generator_ema.n_averaged"}
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{ckpt_path}: its generator weights do not fit the generator "
                              f"it describes ({first})") from exc
    G.latent_dim = int(meta["latent_dim"])
    try:  # how the standard normal draws become G's input (ganzoo.priors)
        G.prior = build_prior(meta.get("prior"))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt_path}: its latent prior cannot be built ({exc})") from None
    G.data_shape = tuple(meta.get("data", {}).get("shape", ()))
    # Conditional generators carry their class count; unconditional ones get None.
    G.num_classes = int(getattr(G, "num_classes", 0) or 0) or None
    # Trained on k-means clusters (data.clusters): each cluster's share; else None.
    prior = meta.get("label_prior")
    G.label_prior = torch.tensor(prior, dtype=torch.float) if prior is not None else None
    return G.to(device).eval()


@torch.no_grad()
def sample(G: nn.Module, n: int, seed: int = 0, labels: Tensor | None = None) -> Tensor:
    """n samples from fixed noise; ``labels`` (n,) for a conditional generator, drawn
    when not given: uniformly, or for k-means cluster labels by the clusters' shares."""
    device = next(G.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(n, G.latent_dim, device=device, generator=gen)
    prior = getattr(G, "prior", None)
    z = z if prior is None else prior(z)
    if getattr(G, "num_classes", None):
        if labels is None:
            prior = getattr(G, "label_prior", None)
            labels = draw_labels(n, G.num_classes, None if prior is None else prior.to(device),
                                 gen, device)
        return G(z, labels.to(device))
    if labels is not None:
        raise ValueError("--class: this generator is not class-conditional")
    return G(z)


def check_device(name: str | torch.device) -> torch.device:
    """``name`` as a torch device present on this machine, else a one-line ValueError."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"--device {name} is not a torch device "
                         "(e.g. cpu, cuda, cuda:1, mps)") from None
    if device.type == "cpu":
        return device
    backend = getattr(torch, device.type, None)
    probe = getattr(backend, "is_available", None) or getattr(
        getattr(torch.backends, device.type, None), "is_available", None)
    available = bool(probe and probe())
    count = (getattr(backend, "device_count", lambda: 1)() if available else 0)
    if not available or (device.index or 0) >= count:
        raise ValueError(f"--device {name} is not available on this machine "
                         f"({count} {device.type} device{'' if count == 1 else 's'})")
    return device


def check_out(out: Path) -> None:
    """Refuse, before any work and before making folders, an output that cannot be
    written: an unknown file type, a directory, or a place no folder can be made in."""
    if out.suffix.lower() not in _FORMATS:
        raise ValueError(f"--out: unsupported file type {out.suffix!r}; use .png, .npy or .pt")
    if out.is_dir():
        raise ValueError(f"--out: {out} is a directory")
    parent = out.absolute().parent  # the nearest existing folder: where ours would be made
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out: cannot write {out} ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot write {out} ({parent} is not writable)")


def save_samples(x: Tensor, out: Path, title: str = "") -> None:
    """.pt / .npy: raw samples; .png: an image grid, or a scatter plot (1-D: histogram)
    for vector data, titled ``title`` so a picture says what it shows.

    Written to a hidden file beside ``out``, then renamed over it: an interrupted or
    failed write never leaves a partial file under the name asked for.
    """
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:  # "x": never through a file or link already there
            _write(x, out.suffix.lower(), f, title)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _write(x: Tensor, suffix: str, f, title: str = "") -> None:
    if suffix == ".pt":
        torch.save(x.cpu(), f)
    elif suffix == ".npy":
        import numpy as np

        np.save(f, x.cpu().numpy())
    elif x.dim() == 4:
        from torchvision.utils import save_image

        save_image(x.cpu(), f, format="png", nrow=max(1, int(len(x) ** 0.5)), normalize=True,
                   value_range=(-1, 1))
    else:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pts = x.reshape(len(x), -1).cpu().numpy()
        fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
        if pts.shape[1] >= 2:
            ax.scatter(pts[:, 0], pts[:, 1], s=4)
            ax.set_aspect("equal")
        else:
            ax.hist(pts[:, 0], bins=80)
        ax.set_title(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(f, format="png")
        plt.close(fig)


def _short(path: Path) -> str:
    """The checkpoint as a title names it: its run folder and file, not the whole path."""
    return "/".join(path.parts[-3:])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ganzoo.sample", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", type=Path, help="a ganzoo checkpoint (e.g. last.ckpt)")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--out", type=Path, default=Path("samples.png"),
                        help="output file: .png, .npy or .pt (default samples.png)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--class", dest="label", type=int, default=None,
                        help="class to generate (conditional models; a k-means cluster "
                             "of the training images when trained with data.clusters)")
    parser.add_argument("--raw", action="store_true",
                        help="use the raw generator instead of its EMA weights")
    parser.add_argument("--device", default="cpu", help="e.g. cpu, cuda, cuda:1 (default cpu)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # Every argument is checked before the checkpoint is read: nothing is loaded,
        # sampled or created for a command that is refused.
        if args.n < 1:
            raise ValueError(f"--n must be >= 1, got {args.n}")
        check_out(args.out)
        device = check_device(args.device)
        G = load_generator(args.ckpt, ema=not args.raw, device=device)
        labels, which, note = None, "", ""
        if args.label is not None:
            if G.num_classes and not 0 <= args.label < G.num_classes:
                raise ValueError(f"--class must be in [0, {G.num_classes - 1}], got {args.label}")
            labels = torch.full((args.n,), args.label, dtype=torch.long)
            clusters = getattr(G, "label_prior", None) is not None  # data.clusters labels
            which = f"{'cluster' if clusters else 'class'} {args.label}"
            note = " (k-means cluster of the training images, not a digit class)" * clusters
        title = f"{_short(args.ckpt)} · {args.n} samples" + (f" of {which}" if which else "")
        save_samples(sample(G, args.n, args.seed, labels), args.out, title)
    except (CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output could not be written after all (disk full, ...)
        print(f"error: --out: cannot write {args.out} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"wrote {args.n} samples" + (f" of {which}{note}" if which else "")
          + f" to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
