"""Top-k training (Sinha, Zhao, Goyal, Raffel & Odena 2020): the generator's loss keeps the
fakes the critic scores most real, a fraction of the batch that may fall from 1 over a
warm-up, so the worst samples send the generator no gradient. Its settings are checked
by ``ganzoo.config.check_topk``."""

from __future__ import annotations

import math

from torch import Tensor

from ganzoo.config import check_topk


class TopK:
    """The GAN module's top-k selection: ``topk`` (the kept fraction, or None: all) and
    ``topk_warmup``, set by ``set_topk``; ``g_step`` counts generator updates."""

    topk: float | None = None
    topk_warmup: int = 0
    g_step: int

    def set_topk(self, keep: float | None, warmup: int, loss) -> None:
        """Check (``ganzoo.config.check_topk``: one line naming the key) and keep them."""
        check_topk(keep, warmup, loss)
        self.topk, self.topk_warmup = keep, warmup

    def kept_fakes(self, n: int) -> int:
        """How many of the generator step's n critic scores (samples, or packs with a packed
        critic) its loss keeps: the fraction falls linearly from 1 at generator step 0 to
        ``topk`` at ``topk_warmup`` (at once when 0), at least one."""
        if self.topk is None:
            return n
        ramp = 1.0 if self.topk_warmup == 0 else min(1.0, self.g_step / self.topk_warmup)
        fraction = self.topk + (1.0 - self.topk) * (1.0 - ramp)
        # rounded first, so that float noise (10 * 0.3 = 3.0000000000000004) adds no sample
        return max(1, math.ceil(round(n * fraction, 6)))

    def top_k(self, fake_logits: Tensor) -> Tensor:
        """The fake logits the generator's loss sees: those of the ``kept_fakes`` highest
        scores (all of them, the tensor itself, when ``topk`` is None)."""
        n = fake_logits.shape[0]
        k = self.kept_fakes(n)
        if k == n:
            return fake_logits
        score = fake_logits.detach().reshape(n, -1).mean(1)
        return fake_logits[score.topk(k, sorted=False).indices]
