"""Memory layout: one training iteration of the image nets in NCHW against NHWC.

``model.channels_last``'s default (NHWC on CPU and CUDA) rests on this measurement. For a
composition (Hydra overrides, as for ``train.py``) it builds the config's generator and
critic and times, in alternating order, the iteration of the loss's recipe in plain
PyTorch (non-saturating: D on real and on the detached fake, backward, then G through the
frozen D; with ``--gp``, WGAN-GP's: D on real and fake plus the gradient penalty on
interpolates, then G on fresh noise), first in the default layout, then with weights and
batches in ``torch.channels_last``. Optimiser steps are left out: they do not depend on
the layout. Prints the median ms per iteration of each and their ratio.

    uv run python benchmarks/layout.py --threads 1 data=digits model.conditional=false
    uv run python benchmarks/layout.py --threads 2 --gp data=cifar10 model=dcgan \
        loss=wgan_gp model.discriminator.norm=layer
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import ganzoo  # noqa: E402, F401  (the config resolvers conf/ uses)
from benchmarks.hand_loop import gradient_penalty  # noqa: E402  (the hand loop's own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gp", action="store_true", help="WGAN-GP's iteration")
    parser.add_argument("--rounds", type=int, default=6, help="alternations of the layouts")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per round")
    parser.add_argument("override", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["out_dir=.", *args.override])
    torch.manual_seed(0)
    G, D = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    n, latent = int(cfg.data.batch_size), int(cfg.model.latent_dim)
    labels = torch.randint(10, (n,)) if cfg.model.get("conditional", False) else None
    extra = () if labels is None else (labels,)
    real_nchw = torch.rand(n, *cfg.data.shape) * 2 - 1

    def iteration(real: torch.Tensor) -> None:
        z = torch.randn(n, latent)
        if args.gp:
            with torch.no_grad():
                fake = G(z, *extra)
            penalty = gradient_penalty(lambda x: D(x, *extra), real, fake, 10.0)
            (D(fake, *extra).mean() - D(real, *extra).mean() + penalty).backward()
            D.requires_grad_(False)
            (-D(G(torch.randn(n, latent), *extra), *extra).mean()).backward()
        else:
            fake = G(z, *extra)
            (F.softplus(-D(real, *extra)).mean()
             + F.softplus(D(fake.detach(), *extra)).mean()).backward()
            D.requires_grad_(False)
            F.softplus(-D(fake, *extra)).mean().backward()
        D.requires_grad_(True)
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)

    times: dict[str, list[float]] = {"NCHW": [], "NHWC": []}
    for r in range(args.rounds):
        for name in (("NCHW", "NHWC") if r % 2 == 0 else ("NHWC", "NCHW")):
            fmt = torch.channels_last if name == "NHWC" else torch.contiguous_format
            G.to(memory_format=fmt)
            D.to(memory_format=fmt)
            real = real_nchw.contiguous(memory_format=fmt)
            iteration(real)  # untimed: the layout's first pass
            start = time.perf_counter()
            for _ in range(args.iters):
                iteration(real)
            times[name].append((time.perf_counter() - start) / args.iters)
    nchw, nhwc = (statistics.median(times[k]) * 1e3 for k in ("NCHW", "NHWC"))
    print(f"{' '.join(args.override)} | {args.threads} thread(s) | "
          f"{'WGAN-GP' if args.gp else 'non-saturating'} | NCHW {nchw:.1f} ms | "
          f"NHWC {nhwc:.1f} ms | NCHW / NHWC {nchw / nhwc:.3f}")


if __name__ == "__main__":
    main()
