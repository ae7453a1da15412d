"""Sample sizes at which a score stops meaning what it says, said once per run.

KID's standard deviation is taken over random subsets of ``kid_subset_size`` images: with
no more images than that, every subset holds them all and the std reads about 0. FID's
covariances are rank-deficient with fewer images than feature dimensions, and FID is
then biased high. Each is logged once, naming the setting to change.
"""

from __future__ import annotations

import logging

log = logging.getLogger("ganzoo")


class SampleSizeCaveats:
    def __init__(self) -> None:
        self.said: set[str] = set()

    def _say(self, key: str, message: str) -> None:
        if key not in self.said:
            self.said.add(key)
            log.warning(message)

    def kid_subset_size(self, wanted: int, n_real: int, n_fake: int) -> int:
        """The subset size KID uses: ``wanted``, or half the images when that would take
        them all (logged)."""
        n = min(n_real, n_fake)
        if wanted < n:
            return wanted
        size = max(2, n // 2)
        self._say("kid", f"metrics.kid_subset_size={wanted} is not below the {n} images "
                         f"compared: every subset would hold them all and eval/kid_std read "
                         f"about 0; KID uses subsets of {size} (raise metrics.n_samples, or "
                         f"lower metrics.kid_subset_size)")
        return size

    def fid(self, n_real: int, n_fake: int, dims: int) -> None:
        n = min(n_real, n_fake)
        if n < dims:
            self._say("fid", f"eval/fid from {n} images of {dims}-dimensional features: "
                             f"the covariances are rank-deficient and FID is biased high; "
                             f"raise metrics.n_samples to at least {dims} (10000 is the "
                             f"standard protocol)")
