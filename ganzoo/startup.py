"""The cyclic garbage collector during start-up.

Starting a run imports torch, Lightning and their dependencies and builds the config,
data and networks: several hundred thousand long-lived objects. Python's collector
meanwhile runs full (oldest-generation) collections over a heap that keeps growing, each
costlier than the last, although next to nothing of it is garbage: on the 2-core machine
of benchmarks/RESULTS.md, seven such collections took about 0.9 s of a ring run's start.
``train.py``, run as a script, pauses the collector before its imports; ``resume`` (at the
start of training) moves every object then alive into the permanent generation
(``gc.freeze``, undone at exit), which later collections skip, and turns collection back
on. Imported
as a library (tests, notebooks, ``from train import train``), nothing is paused and
``resume`` does nothing.
"""

from __future__ import annotations

import atexit
import gc

_paused = False


def pause() -> None:
    """Turn the collector off until ``resume`` (if it is on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """After ``pause``: collect once, freeze what is alive, turn the collector on."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    gc.enable()
    # At exit the frozen objects go back to the collector, so that the interpreter's
    # shutdown frees them as usual (extension modules check that theirs were freed).
    atexit.register(gc.unfreeze)
