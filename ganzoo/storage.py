"""Writing a run's files so that a failure never leaves half a file.

Every checkpoint (Lightning's saves go through ``ganzoo.callbacks.AtomicCheckpointIO``),
``metrics.json`` and ``samples.png`` is written to a temporary file beside its destination
and renamed over it: a full disk or a kill mid-write leaves the previous file as it was, and
``StorageError`` says so in one line. ``deferred_signals`` lets the final writes finish
when a second Ctrl-C arrives during them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path


class StorageError(OSError):
    """A run's file could not be written; the message names it and what was kept."""


def _write(handle, data: bytes) -> None:
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            _write(handle, data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        kept = (f"the previous {path.name} is as it was" if existed
                else "nothing was written there")
        raise StorageError(f"could not write {path} ({exc.strerror or exc}); {kept}") from exc


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM are noted, not acted on, until the block ends (the list holds
    them); outside the main thread, signals cannot be caught and nothing changes."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
