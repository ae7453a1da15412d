"""The GAN loop a competent user writes by hand, as its own plain-PyTorch process.

The baseline of ``benchmarks/throughput.py``. Lightning is never imported, nor ganzoo's
training path (``ganzoo.gan``, ``ganzoo.data``, ``train.py``): the config is composed
with Hydra from the same overrides a ganzoo run gets, the generator and critic are the
same ``ganzoo.nets`` modules built from it, and the rest is written out here:

* data: the same training set in memory (the toy mixture's points; the digits or the
  synthetic CIFAR-shaped images as uint8, each batch converted to floats in [-1, 1]),
  each batch an index draw with replacement, as ganzoo draws it;
* Adam with the config's rates and betas, ``foreach=True``; linear learning-rate decay
  and generator EMA (``torch.optim.swa_utils``) where the config has them;
* non-saturating (k = 1): ``fake = G(z)``; D on real and on ``fake.detach()``, step; the
  critic frozen (``requires_grad_(False)``), G on D(fake) reusing the fake batch, step;
* WGAN-GP (Gulrajani et al. 2017, Algorithm 1): k x (fake under ``no_grad``, D on real
  and fake, the gradient penalty on interpolates, step), then the critic frozen and G on
  fresh noise, step;
* ``loss.item()`` every 50 generator steps (what a loop that prints or logs pays).

With ``--job`` it also does what the default ``train.py`` run does at its end: the same
final evaluation (ganzoo's toy evaluator: mode coverage, the reference divergence and
samples.png), a checkpoint of G, D, EMA and both optimisers, and metrics.json.

Prints one JSON line: the threads used, the wall time (``time.time()``) at the end of the
first generator step, the timed window's steps/s (``--warmup`` steps excluded) and the
peak resident set size (VmHWM).

    uv run python benchmarks/hand_loop.py --threads 1 --steps 400 --warmup 20 data=ring
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import ganzoo  # noqa: E402, F401  (the config resolvers conf/ uses; omegaconf only)


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def training_set(cfg) -> torch.Tensor:
    """The data ganzoo trains on: the toy points as floats, images as uint8 (converted
    per batch, as ganzoo holds them)."""
    if "distribution" in cfg.data:  # toy: the same n_train points, same seed
        dist = instantiate(cfg.data.distribution)
        return dist.sample(cfg.data.n_train, generator=torch.Generator().manual_seed(cfg.seed))
    if cfg.data.name == "digits":
        from sklearn.datasets import load_digits
        from torchvision.transforms import v2

        images = torch.from_numpy(load_digits().images).mul(255 / 16).round().to(torch.uint8)
        images = v2.functional.resize(images[:, None], list(cfg.data.shape[1:]), antialias=True)
    else:  # synthetic CIFAR-shaped images, as benchmarks/throughput.py gives ganzoo
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (50_000, *cfg.data.shape), dtype=torch.uint8,
                               generator=gen)
    return images


def batch(data: torch.Tensor, n: int) -> torch.Tensor:
    x = data[torch.randint(len(data), (n,), device=data.device)]
    return x if x.is_floating_point() else x.float().div(127.5).sub(1.0)  # to [-1, 1]


def gradient_penalty(D, real, fake, weight):
    eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).float().sum(), x_hat, create_graph=True)
    return weight * ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--steps", type=int, help="generator steps (default: the config's)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed first steps")
    parser.add_argument("--job", action="store_true", help="final evaluation and outputs")
    parser.add_argument("--out", default=None)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile G and D")
    parser.add_argument("--nhwc", action="store_true",
                        help="convolutions in NHWC on CPU too (as ganzoo's default)")
    parser.add_argument("override", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["out_dir=.", *args.override])
    steps = args.steps or cfg.steps
    torch.manual_seed(cfg.seed)
    device = torch.device(args.device)
    data = training_set(cfg).to(device)
    G = instantiate(cfg.model.generator).to(device)
    D = instantiate(cfg.model.discriminator).to(device)
    # NHWC for convolutions: on CUDA as every GPU user does; on CPU with --nhwc.
    nhwc = (device.type == "cuda" or args.nhwc) and data.dim() == 4
    if nhwc:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # The compiled modules share their weights; the penalty differentiates the plain D.
    G_, D_ = (torch.compile(G), torch.compile(D)) if args.compile else (G, D)
    amp = torch.autocast(device.type, dtype=torch.bfloat16,
                         enabled=args.precision == "bf16-mixed")
    ema = None
    if cfg.ema.decay is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema.decay),
                            use_buffers=True).requires_grad_(False)
    betas_g, betas_d = (tuple(cfg.optim[p].get("betas", (0.5, 0.999))) for p in "gd")
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.g.lr, betas=betas_g, foreach=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.d.lr, betas=betas_d, foreach=True)
    scheds = []
    if cfg.lr_decay == "linear":
        scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: max(0.0, 1 - s / steps))
                  for o in (opt_g, opt_d)]
    wgan_gp = cfg.penalty is not None and cfg.penalty._target_.endswith("GradientPenalty")
    k, n, latent = cfg.n_critic, cfg.data.batch_size, cfg.model.latent_dim

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t_first = t0 = None
    figures = {}
    for step in range(1, steps + 1):
        D.requires_grad_(True)
        for _ in range(k):
            real = batch(data, n)
            if nhwc:
                real = real.contiguous(memory_format=torch.channels_last)
            z = torch.randn(n, latent, device=device)
            if wgan_gp:
                with torch.no_grad(), amp:
                    fake = G_(z)
                with amp:
                    d_loss = D_(fake).float().mean() - D_(real).float().mean()
                with amp:
                    d_loss = d_loss + gradient_penalty(D, real, fake, cfg.penalty.weight)
            else:
                with amp:
                    fake = G_(z)
                    d_loss = (F.softplus(-D_(real).float()).mean()
                              + F.softplus(D_(fake.detach()).float()).mean())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        D.requires_grad_(False)
        with amp:
            if wgan_gp:
                g_loss = -D_(G_(torch.randn(n, latent, device=device))).float().mean()
            else:
                g_loss = F.softplus(-D_(fake).float()).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if ema is not None:
            ema.update_parameters(G)
        for sched in scheds:
            sched.step()
        if step % 50 == 0:
            figures = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if step == 1:
            sync()
            t_first = time.time()
        if step == args.warmup:
            sync()
            t0 = time.perf_counter()
    sync()
    t1 = time.perf_counter()
    result = {"threads": torch.get_num_threads(), "first_step": t_first,
              "steps_per_s": (steps - args.warmup) / (t1 - (t0 or t1)) if t0 else None,
              "peak_rss_mib": peak_rss_mib(), "last_figures": figures,
              "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20
                               if device.type == "cuda" else None),
              "lightning_imported": any(m.startswith("lightning") for m in sys.modules)}
    if args.job:
        result["eval"] = final_job(cfg, G, D, ema, opt_g, opt_d, steps, args.out)
        result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def final_job(cfg, G, D, ema, opt_g, opt_d, steps, out):
    """The default run's final outputs: evaluation, samples.png, checkpoint, metrics."""
    from ganzoo.eval.toy import ToyEvaluator

    out = Path(out or tempfile.mkdtemp(prefix="hand_loop_"))
    out.mkdir(parents=True, exist_ok=True)

    class Module:  # what the evaluator reads: samples from fixed noise, loss, critic
        def __init__(self):
            self.loss, self.discriminator = instantiate(cfg.loss), D

        @torch.no_grad()
        def generate(self, count, seed):
            z = torch.randn(count, cfg.model.latent_dim,
                            generator=torch.Generator().manual_seed(seed))
            return (ema.module if ema is not None else G)(z)

    evaluator = ToyEvaluator(instantiate(cfg.data.distribution), cfg.data.n_eval, seed=cfg.seed)
    module = Module()
    figures = evaluator(module)
    evaluator.plot(out / "samples.png", module, f"step {steps}")
    torch.save({"G": G.state_dict(), "D": D.state_dict(),
                "ema": None if ema is None else ema.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": steps},
               out / "last.ckpt")
    (out / "metrics.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
