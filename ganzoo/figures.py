"""The figures of a GAN module: training figures on logging steps, evaluations, and where
both go (``trainer.callback_metrics`` through ``self.log``, and every logger against the
generator step). ``GAN`` mixes this in.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo import distributed
from ganzoo.nets.layers import eval_mode


def grad_norm(module: nn.Module) -> Tensor:
    """Total 2-norm of a module's gradients (0 if it has none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class Figures:
    @property
    def skipped_steps(self) -> int:
        return self.guard.skipped

    @property
    def nonfinite(self) -> str:
        """What a non-finite loss does: 'stop' or 'skip' (the guard's mode)."""
        return self.guard.mode

    def _log_training(self, d_loss: Tensor, g_loss: Tensor, penalty: Tensor | None,
                      real_logits: Tensor, fake_logits: Tensor) -> None:
        self.check_finite()
        opt_g, opt_d = self.optimizers()
        with torch.no_grad():
            figures = {
                "train/d_loss": d_loss,
                "train/g_loss": g_loss,
                "train/penalty": d_loss.new_zeros(()) if penalty is None else penalty,
                "train/d_real": real_logits.mean(),
                "train/d_fake": fake_logits.mean(),
                # Gradients of the last critic and generator updates, still in .grad
                # until the next step clears them: read on logging steps only.
                "train/grad_norm_d": grad_norm(self.discriminator),
                "train/grad_norm_g": grad_norm(self.generator),
            }
            divergence = self.loss.divergence(real_logits, fake_logits)
            if divergence is not None:
                figures["train/divergence"] = divergence
            if getattr(self, "augment", None) is not None:  # ADA: its p and r_t
                figures.update(self.augment.figures())
        figures = distributed.mean_over_ranks(figures)  # over the global batch
        figures = {k: v.item() for k, v in figures.items()}
        figures["train/lr_g"] = opt_g.param_groups[0]["lr"]
        figures["train/lr_d"] = opt_d.param_groups[0]["lr"]
        if self.nonfinite == "skip":
            figures["train/skipped_steps"] = float(self.skipped_steps)
        self.log_figures(figures)

    def check_finite(self) -> None:
        """Raise NonFiniteLossError if a loss has stopped being finite (stop mode)."""
        self.guard.check(self.device)

    def log_figures(self, figures: dict[str, float], log: bool = True) -> None:
        """Keep figures and log them: through ``self.log`` into ``trainer.callback_metrics``
        (what ModelCheckpoint, EarlyStopping and any callback read), and to every logger
        against the generator step, once (Lightning's own forwarding would repeat a figure
        at every later batch and stamp it with its batch counter)."""
        train = any(k.startswith("train/") for k in figures)
        (self.last_train if train else self.last_eval).update(figures)
        if not log or not figures:
            return
        self.log_dict(figures, on_step=True, on_epoch=False, logger=False, batch_size=1)
        for logger in self.loggers:
            logger.log_metrics(figures, step=self.g_step)
            logger.save()  # as Lightning does after logging: the files stay current

    def evaluate(self, log: bool = True) -> dict[str, float]:
        """Run the evaluator on the sampling generator (in eval mode) and log its figures;
        under DDP every rank takes part and ends with rank 0's figures."""
        if self.evaluator is None:
            return {}
        with eval_mode(self.sampling_generator):
            figures = self.evaluator(self)
        figures = distributed.from_rank_zero(figures, self.device)
        self.log_figures(figures, log=log)
        return figures
