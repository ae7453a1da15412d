"""Lightning callbacks that count in generator steps: progress bar and evaluation."""

from __future__ import annotations

import io
import signal
import sys
import threading
import time
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

import ganzoo._compat  # noqa: F401  (checks the ModelCheckpoint methods used here)
from ganzoo.nets.layers import eval_mode
from ganzoo.storage import atomic_write

# The evaluation figures the progress bar shows (the rest goes to the loggers only).
HEADLINE_EVAL = ("eval/fid", "eval/kid", "eval/is", "eval/modes", "eval/hq", "eval/reverse_kl")


class GeneratorStepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, one from the start of training, counting generator updates
    (rate, ETA, the latest losses and headline figures).

    Not on a terminal (CI logs, ``> file``), a bar redrawn with carriage returns is noise:
    ``plain`` (default: when stdout is not a TTY) prints one line every ``every``
    generator steps instead, at most about 20 per run, and one at the end.
    """

    block_aware = True  # acts on generator steps: multiples of `every` (plain) and the end
    every_key = "log_every"

    def __init__(self, refresh_rate: int = 10, plain: bool | None = None,
                 every: int = 50) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.plain = (not sys.stdout.isatty()) if plain is None else plain
        self.every, self._shown, self._total, self._start = every, 0, None, 0
        self._clock = 0.0

    def init_train_tqdm(self):
        from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

        # Made with its description, total and start (a resumed run's rate counts only
        # what it runs), so its first drawing is already the bar of generator steps.
        return Tqdm(desc="generator steps", total=self._total, initial=self._start,
                    disable=self.is_disabled or self.plain, leave=True, dynamic_ncols=True,
                    file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        total = pl_module.total_steps
        if self.plain and total:  # about 20 lines, on multiples of the logging interval
            self.every = max(self.every, -(-total // 20 // self.every) * self.every)
        self._start = self._shown = pl_module.g_step
        self._clock = time.perf_counter()
        self._total = total
        self.train_progress_bar = self.init_train_tqdm()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module) -> None:
        pass  # one endless epoch: the bar made at the start of training is the bar

    def _figures(self, pl_module) -> dict[str, str]:
        post = {k.split("/")[1]: f"{v:.3g}" for k, v in pl_module.last_train.items()
                if k in ("train/d_loss", "train/g_loss")}
        post.update({k.split("/")[1]: f"{v:.3g}" for k, v in pl_module.last_eval.items()
                     if k in HEADLINE_EVAL})
        return post

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        g, end = pl_module.g_step, pl_module.g_step == pl_module.total_steps
        if self.plain:
            if g != self._shown and (g % self.every == 0 or end) and trainer.is_global_zero:
                self._shown = g
                print(self._line(g, pl_module), flush=True)
            return
        if g == self._shown or (g % self.refresh_rate and not end):
            return
        self._shown = g
        bar = self.train_progress_bar
        bar.n = g
        bar.set_postfix(self._figures(pl_module), refresh=False)
        bar.refresh()

    def _line(self, g: int, pl_module) -> str:
        elapsed = max(time.perf_counter() - self._clock, 1e-9)
        rate = (g - self._start) / elapsed
        total = self._total
        head = f"generator steps {g}/{total} ({100 * g / total:.0f} %)" if total \
            else f"generator steps {g}"
        parts = [head, f"{rate:.1f} it/s"]
        if total and rate > 0:
            parts.append(f"ETA {_clock((total - g) / rate)}")
        figures = " ".join(f"{k}={v}" for k, v in self._figures(pl_module).items())
        return " · ".join(parts + ([figures] if figures else []))

    def on_validation_end(self, trainer, pl_module) -> None:
        pass  # evaluations run inside training: no validation bar to close

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # The epoch of an endless stream ends only when training does.
        if self.train_progress_bar is not None and not self.train_progress_bar.disable:
            self.train_progress_bar.close()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class PeriodicEvaluation(L.Callback):
    """Evaluate every ``every`` generator steps (0: never during training) and at the last
    step, and draw.

    Each evaluation logs the evaluator's figures through Lightning (``self.log``) and, given
    a run directory, saves the evaluator's picture of the generator (a fixed-noise sample
    grid; for toy data the samples over the data with the critic behind them) as
    ``samples/step_000500.png`` and sends it to every logger that takes images. For
    Lightning's other callbacks an evaluation is the end of a validation: their
    ``on_validation_end`` runs after it, so ``ModelCheckpoint(monitor="eval/fid")`` and
    ``EarlyStopping(monitor="eval/hq")`` act on each evaluation.
    """

    block_aware = True  # acts on the multiples of `every` and the end (ganzoo.updates)
    every_key = "eval_every"

    def __init__(self, every: int, out_dir: str | Path | None = None, title: str = "") -> None:
        self.every = every
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.title = title
        self._last = -1
        self.last_picture: Path | None = None

    def due(self, pl_module) -> bool:
        g = pl_module.g_step
        if g == 0 or g == self._last or not pl_module.generator_updated:
            return False
        return (self.every > 0 and g % self.every == 0) or g == pl_module.total_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.due(pl_module):
            return
        pl_module.check_finite()
        self.run(trainer, pl_module)
        for callback in trainer.callbacks:  # evaluation = validation, for callbacks
            if callback is not self:
                callback.on_validation_end(trainer, pl_module)

    def run(self, trainer, pl_module, log: bool = True) -> dict[str, float]:
        """Evaluate and draw now, at the current generator step."""
        from ganzoo.loggers import log_image

        g = self._last = pl_module.g_step
        figures = pl_module.evaluate(log=log)
        evaluator = pl_module.evaluator
        if self.out_dir is not None and trainer.is_global_zero and hasattr(evaluator, "plot"):
            path = self.out_dir / "samples" / f"step_{g:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            title = f"{self.title} · {g} generator steps" if self.title else f"step {g}"
            with eval_mode(pl_module.sampling_generator):  # a picture changes no state
                evaluator.plot(path, pl_module, title)
            log_image(trainer.loggers, "samples", path, g)
            self.last_picture = path
        return figures

    def finish(self, trainer, pl_module, log: bool = True) -> dict[str, float]:
        """The final evaluation: reuse the one of this step if it ran, else run it."""
        if self._last == pl_module.g_step:
            return dict(pl_module.last_eval)
        return self.run(trainer, pl_module, log=log)


class FinalEvaluation(L.Callback):
    """The end of training, decided while every DDP rank is still in the process group.

    At ``on_train_end`` all ranks agree on the stop signal (if any rank received one),
    check the losses once more (stop mode), and, when training completed, run the final
    evaluation, whose generation is sharded over the ranks. ``ran`` stays false when
    ``fit`` had nothing left to train (a finished run resumed).
    """

    def __init__(self, evaluation: PeriodicEvaluation, interrupt: GracefulInterrupt) -> None:
        self.evaluation, self.interrupt = evaluation, interrupt
        self.ran = False
        self.signum = 0
        self.figures: dict[str, float] = {}

    def on_train_end(self, trainer, pl_module) -> None:
        from ganzoo.distributed import max_over_ranks

        self.ran = True
        self.signum = max_over_ranks(self.interrupt.received or 0, pl_module.device)
        pl_module.check_finite()
        if not self.signum:  # the last step's evaluation ran in training (logged there)
            self.figures = self.evaluation.finish(trainer, pl_module, log=False)


class GeneratorStepCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, triggered every ``every`` generator steps.

    With manual optimisation the state after a generator update is exactly the state a
    resumed run needs, so checkpoints are taken right after that update, named by the
    generator step (``step_001000.ckpt``) rather than Lightning's optimiser-step count.
    It uses ModelCheckpoint's protected save methods (``ganzoo._compat.CHECKPOINT_METHODS``,
    checked when ganzoo's callbacks are imported).
    """

    block_aware = True  # acts on the multiples of `every` (ganzoo.updates)
    every_key = "ckpt_every"

    def __init__(self, every: int, **kwargs) -> None:
        super().__init__(every_n_train_steps=0, **kwargs)
        self.every = every
        self._last_g = -1

    def load_state_dict(self, state_dict: dict) -> None:
        # A resumed run usually writes into a new run directory; the previous run's
        # top-k bookkeeping names files in its own directory and stays with it.
        if state_dict.get("dirpath") == self.dirpath:
            super().load_state_dict(state_dict)

    def _monitor_candidates(self, trainer: L.Trainer) -> dict:
        # "step" in file names is the generator step, read here rather than logged by
        # the module every step (a per-step self.log costs more than a small model's step).
        candidates = super()._monitor_candidates(trainer)
        candidates["step"] = torch.tensor(trainer.lightning_module.g_step)
        return candidates

    def on_validation_end(self, trainer, pl_module) -> None:
        pass  # checkpoints follow generator steps, not evaluations (checkpoint.best does)

    def on_train_end(self, trainer, pl_module) -> None:
        pass  # train.py writes the final last.ckpt, once, after the final evaluation

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        g = pl_module.g_step
        if g == 0 or g % self.every or g == self._last_g or not pl_module.generator_updated:
            return
        if g == pl_module.total_steps:
            return  # the run's end: train.py writes last.ckpt (a step_ copy would repeat it)
        if self._should_skip_saving_checkpoint(trainer):
            return
        pl_module.check_finite()  # never overwrite a good checkpoint with a diverged one
        self._last_g = g
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)


class GracefulInterrupt(L.Callback):
    """SIGINT (Ctrl-C) and SIGTERM (pre-emption, SLURM): finish the step in flight, then
    stop, so the caller can save a consistent checkpoint. A second signal stops at once.
    On one device the signal stops training at once (``trainer.should_stop``), so a block
    of steps (``ganzoo.updates``) ends after its current generator update.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    block_aware = True

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._trainer = None

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        if self._trainer is not None and self._trainer.world_size == 1:
            self._trainer.should_stop = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._trainer = trainer
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:  # DDP: every rank stops after the same batch
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            trainer.should_stop = True

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._trainer = None
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic (temporary file, then rename)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, buffer.getvalue())
