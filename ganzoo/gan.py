"""The GAN LightningModule: the alternating-update loop, written once.

Algorithm 1 of Goodfellow et al. 2014 with k = ``n_critic``: every call of
``training_step`` is one discriminator update on a fresh real batch, and every k-th
call also updates the generator. The loop owns schedules (k, the penalty's lazy
interval, EMA, learning-rate decay) and optimisers; the loss plugin (``ganzoo.losses``)
owns the mathematics, the penalty plugin (``ganzoo.penalties``) the critic's
regulariser, the evaluator plugin (``ganzoo.eval``) the figures of merit.

Steps are counted as papers count them: ``g_step`` is the number of generator
updates. Lightning's ``global_step`` counts every optimiser step (k + 1 per generator
update) and is kept out of everything users see: figures are logged with ``step`` =
``g_step``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganzoo import distributed
from ganzoo._compat import patch_lightning_pytree
from ganzoo.checkpoint import ResumeState
from ganzoo.config import check_module_settings
from ganzoo.data.streams import Block
from ganzoo.figures import Figures
from ganzoo.generation import Generation
from ganzoo.guard import NonFiniteGuard, NonFiniteLossError
from ganzoo.losses.base import GANLoss, at_least_fp32
from ganzoo.nets.layers import check_models, has_batch_statistics, spectral_normalize
from ganzoo.nets.pack import Packed
from ganzoo.penalties import Penalty
from ganzoo.topk import TopK
from ganzoo.updates import Updates, block_steps

__all__ = ["GAN", "NonFiniteLossError"]

patch_lightning_pytree()

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class GAN(Generation, Figures, ResumeState, TopK, Updates, L.LightningModule):
    """G, D, a loss, an optional penalty and evaluator, and the schedules that train them.

    ``pack`` > 1 wraps the critic for packs of that many samples (PacGAN; it must be
    built for ``ganzoo.nets.pack.packed_shape(data_shape, pack)``); ``spectral_norm``
    normalises every layer of the critic; ``augment`` (``ganzoo.augment``) transforms every
    critic input; ``prior`` (``ganzoo.priors``; None: N(0, I)) maps every noise draw to G's
    input. ``sampling``: what a checkpoint keeps for sampling without the training stack
    (``ganzoo.checkpoint.sampling_record``); ``recipe``: what a resumed run must share with
    its checkpoint (``ganzoo.checkpoint.recipe_record``).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        latent_dim: int,
        penalty: Penalty | None = None,
        evaluator=None,
        augment: nn.Module | None = None,
        prior=None,
        n_critic: int = 1,
        topk: float | None = None, topk_warmup: int = 0,  # top-k training, ganzoo.topk
        total_steps: int | None = None,
        log_every: int = 50,
        lr_decay: str = "none",
        nonfinite: str = "stop",
        loss_limit: float | None = 1e8,
        ema_decay: float | None = None,
        ema_start: int = 0,
        data_shape: Sequence[int] | None = None,
        pack: int = 1,
        spectral_norm: bool = False,
        conditional: bool | None = None,
        compile: bool = False,
        channels_last: bool | None = None,
        name: str | None = None,
        block_steps: int | str = "auto",
        sampling: dict | None = None,
        recipe: dict | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        check_module_settings(latent_dim, n_critic, log_every, lr_decay, total_steps, ema_decay,
                              ema_start, prior, block_steps)
        self.set_topk(topk, topk_warmup, loss)
        if spectral_norm:
            spectral_normalize(discriminator)
        if pack > 1:
            if data_shape is None:
                raise ValueError("model.pack needs the data's shape (data_shape)")
            discriminator = Packed(discriminator, pack, data_shape)
        if data_shape is not None:
            check_models(generator, discriminator, data_shape,
                         penalty=None if penalty is None else f"penalty={type(penalty).__name__}")
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.penalty = penalty
        self.augment, self.prior = augment, prior  # ganzoo.augment's T, ganzoo.priors'
        self.evaluator = evaluator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.latent_dim, self.n_critic = latent_dim, n_critic
        self.total_steps, self.log_every, self.lr_decay = total_steps, log_every, lr_decay
        self.name, self.sampling, self.block_steps = name, dict(sampling or {}), block_steps
        self.recipe = dict(recipe or {})  # checked against a checkpoint resumed from
        # A class-conditional pair (generator.num_classes > 0) gets labels: the data's
        # for real batches, draws from label_prior (uniform by default) for fakes.
        self.num_classes = int(getattr(generator, "num_classes", 0) or 0)
        if conditional is not None and bool(conditional) != (self.num_classes > 0) and (
                "conditional" in inspect.signature(type(generator)).parameters):
            # model.conditional is the switch conditional architectures read; they must
            # agree with it (an architecture without the switch, mlp, is unconditional).
            raise ValueError(f"model.conditional={str(bool(conditional)).lower()} but the "
                             f"generator has num_classes={self.num_classes}")
        # The labels' distribution when they are k-means clusters (data.clusters): set
        # from the data module at setup, kept in checkpoints for sampling.
        self.register_buffer("label_prior", None, persistent=False)
        self.guard = NonFiniteGuard(nonfinite, loss_limit)
        # Exponential moving average of the generator's weights (and buffers), updated
        # after every generator step from ema_start on; used for evaluation and sampling.
        self.ema_start = ema_start
        self.generator_ema = None if ema_decay is None else _ema(generator, ema_decay)
        self.g_step = 0  # generator updates done
        self.d_step = 0  # critic updates done
        # One critic pass over [real; fake] when no layer mixes samples of a batch.
        self.fuse_critic_pass = not has_batch_statistics(discriminator)
        # GPU fast path. compile: the training passes of G and D run through torch.compile
        # (the modules themselves, their weights and checkpoints stay as they are; a
        # penalty differentiates twice, which compiled graphs cannot, so it uses the
        # plain critic). channels_last: conv nets in NHWC; None: on CPU and CUDA, where
        # NHWC convolutions are the faster ones (benchmarks/RESULTS.md), not elsewhere.
        self._compiled = (torch.compile(generator), torch.compile(discriminator)) \
            if compile else None  # a tuple, so not registered as submodules
        self.channels_last = channels_last
        self.last_train: dict[str, float] = {}  # last logged training figures (host floats)
        self.last_eval: dict[str, float] = {}

    @property
    def generator_updated(self) -> bool:
        """Whether the batch just trained ended with a generator update. The callbacks that
        act per generator step (evaluation, checkpoints) act only then: a resumed run's
        first batches are critic steps at the checkpoint's generator step, which was
        evaluated and saved before that checkpoint was taken."""
        return self.d_step > 0 and self.d_step % self.n_critic == 0

    # --- set-up -------------------------------------------------------------------------

    def configure_optimizers(self):
        opt_g = self.optimizer_g(self.generator.parameters())
        opt_d = self.optimizer_d(self.discriminator.parameters())
        if self.lr_decay == "none":
            return opt_g, opt_d
        # Linear decay to zero over the run, stepped once per generator update.
        total = self.total_steps

        def factor(g_step: int) -> float:
            return max(0.0, 1.0 - g_step / total)

        scheds = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], scheds

    def setup(self, stage: str) -> None:
        from ganzoo.data.base import check_datamodule

        dm = self.trainer.datamodule
        if dm is None:
            return
        check_datamodule(dm)  # Lightning set it up first: its labels are known
        dm.train_block = (block_steps(self, self.trainer, self.block_steps), self.n_critic)
        prior = dm.label_prior if self.num_classes else None
        if prior is not None:
            if prior.shape != (self.num_classes,):
                raise ValueError(f"the data has {prior.numel()} clusters, the conditional "
                                 f"generator {self.num_classes} classes")
            self.label_prior = prior.to(self.device)
        if self.evaluator is not None and hasattr(self.evaluator, "setup"):
            self.evaluator.setup(dm)

    def on_fit_start(self) -> None:
        self.start_updates()
        use = self.channels_last
        if use is None:
            use = self.device.type in ("cpu", "cuda")
        if use:  # only 4-D weights change layout; MLPs are unaffected
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self._channels_last = bool(use)

    # --- networks -------------------------------------------------------------------------

    def D(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The critic's logits as training computes them (compiled when model.compile)."""
        D = self.discriminator if self._compiled is None else self._compiled[1]
        return at_least_fp32(D(x) if y is None else D(x, y))  # loss arithmetic in fp32 (AMP)

    def _G(self, z: Tensor, y: Tensor | None) -> Tensor:
        G = self.generator if self._compiled is None else self._compiled[0]
        return G(z) if y is None else G(z, y)

    def penalty_view(self, labels: Tensor | None,
                     *samples: Tensor) -> tuple[Callable[[Tensor], Tensor], list[Tensor]]:
        """The critic and inputs that sample penalties act on: the uncompiled critic (they
        differentiate twice), with labels bound; a packed critic (PacGAN,
        ``ganzoo.nets.pack``) is penalised on its own inputs, whole packs."""
        D, T = self.discriminator, self.augment
        if isinstance(D, Packed):  # T acts on samples: unpack, augment, pack again
            critic = D.critic if T is None else (lambda p: D(T(p.reshape(-1, *D.data_shape))))
            return critic, [D.pack_batch(x) for x in samples]
        critic = D if T is None else (lambda x, *y: D(T(x), *y))  # grad_x D(T(x)), through T
        return (critic if labels is None else (lambda x: critic(x, labels))), list(samples)

    def critic(self, real: Tensor, fake: Tensor, y_real: Tensor | None = None,
               y_fake: Tensor | None = None, real_graph: bool = True) -> tuple[Tensor, Tensor]:
        """Critic logits on real and fake, in one pass where that is exact; real_graph=False
        (a relativistic generator step) reads the real batch without a graph, so the backward
        pass runs through the critic for the fakes only."""
        if self.augment is not None:  # one distribution of T for real and fake
            real, fake = self.augment(real), self.augment(fake)
        if not real_graph:
            with torch.no_grad():
                real_logits = self.D(real, y_real)
            return real_logits, self.D(fake, y_fake)
        if self.fuse_critic_pass:
            y = None if y_real is None else torch.cat([y_real, y_fake])
            logits = self.D(torch.cat([real, fake]), y)
            # One logit per sample, or per pack of m samples with a packed critic.
            n_real = logits.shape[0] * real.shape[0] // (real.shape[0] + fake.shape[0])
            return logits[:n_real], logits[n_real:]
        return self.D(real, y_real), self.D(fake, y_fake)

    # --- one step -----------------------------------------------------------------------

    def _penalty(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor | None:
        """This critic step's penalty term: None except every penalty.every-th step, then
        scaled by that interval (lazy regularisation)."""
        if self.penalty is None or self.d_step % self.penalty.every:
            return None
        critic, (real_in, fake_in) = self.penalty_view(labels, real, fake)
        value = self.penalty(critic, real_in, fake_in)
        return value if self.penalty.every == 1 else self.penalty.every * value

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        if isinstance(batch, Block):  # consecutive batches, trained on in turn
            return self.train_block(batch, batch_idx)
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        if real.dim() == 4 and getattr(self, "_channels_last", False):
            real = real.contiguous(memory_format=torch.channels_last)  # (B, C, H, W), NHWC
        y_real = batch[1] if self.num_classes else None
        opt_g, opt_d = self.optimizers()
        g_params, d_params = self.players()
        n = real.shape[0]

        # With k = 1 the generator update follows at once and reuses this fake batch (and
        # its graph), so G runs forward once per iteration, as in the DCGAN reference
        # code; with k > 1 the critic's fakes are drawn without a graph and the generator
        # update draws its own.
        reuse = self.n_critic == 1
        z, y_fake = self.training_noise(n)
        with torch.set_grad_enabled(reuse):
            fake_g = self._G(z, y_fake)
        fake = fake_g.detach()
        # Critic update; the generator is frozen.
        self.set_trainable(g_params, False)
        real_logits, fake_logits = self.critic(real, fake, y_real, y_fake)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        penalty = self._penalty(real, fake, y_real)
        d_total = d_loss if penalty is None else d_loss + penalty
        if not self.guard.skip(d_total, "train/d_loss", self.g_step + 1):
            self.step_player(opt_d, d_total)
            self.loss.after_d_step(self.discriminator)
            if self.augment is not None:  # ADA adapts to the critic's signs on reals
                self.augment.observe(real_logits.detach(), n, self.d_step + 1)
        self.set_trainable(g_params, True)
        self.d_step += 1
        if self.d_step % self.n_critic:
            return

        # Generator update; the critic is frozen.
        self.set_trainable(d_params, False)
        y_g = y_fake
        if not reuse:  # a fresh fake batch of its own
            z, y_g = self.training_noise(n)
            fake_g = self._G(z, y_g)
        if self.loss.needs_real_logits:  # relativistic: the current critic on this real batch
            real_logits_g, fake_logits_g = self.critic(real, fake_g, y_real, y_g, real_graph=False)
        else:
            real_logits_g, fake_logits_g = None, self.D(
                fake_g if self.augment is None else self.augment(fake_g), y_g)
        g_loss = self.loss.g_loss(real_logits_g, self.top_k(fake_logits_g))
        if not self.guard.skip(g_loss, "train/g_loss", self.g_step + 1):
            self.step_player(opt_g, g_loss)
        self.set_trainable(d_params, True)
        distributed.average_running_stats(self)  # DDP: every rank keeps the same buffers
        self.g_step += 1
        if self.generator_ema is not None and self.g_step > self.ema_start:
            # The first update copies the raw weights; later ones average.
            self.generator_ema.update_parameters(self.generator)
        for sched in self.lr_schedulers() or []:
            sched.step()
        if self.total_steps is not None and self.g_step >= self.total_steps:
            # The run ends on generator steps; Lightning's max_steps (optimiser steps)
            # is only a backstop, since skipped updates take no optimiser step.
            self.trainer.should_stop = True
        if self.g_step % self.log_every == 0 or self.g_step == self.total_steps:
            self._log_training(d_loss, g_loss, penalty, real_logits, fake_logits)


def _ema(generator: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of the generator's weights and buffers."""
    ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return ema.requires_grad_(False)
