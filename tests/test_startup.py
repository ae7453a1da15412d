"""ganzoo.startup: the collector paused while train.py starts, frozen and resumed at fit."""

import gc
import weakref

from ganzoo import startup


def test_resume_without_a_pause_changes_nothing():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    startup.resume()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_pause_then_resume_collects_freezes_and_turns_the_collector_back_on():
    class Cycle:
        pass

    before = gc.get_freeze_count()
    try:
        startup.pause()
        assert not gc.isenabled()
        garbage = Cycle()
        garbage.self = garbage  # only the cyclic collector frees it
        freed = weakref.ref(garbage)
        kept = [Cycle() for _ in range(100)]
        del garbage
        assert freed() is not None  # no collection while paused
        startup.resume()
        assert gc.isenabled()
        # Everything alive was frozen (the kept objects among it); the cycle was freed
        # before, not frozen.
        assert gc.get_freeze_count() >= before + len(kept)
        assert freed() is None
        startup.resume()  # a second call (another run in the same process): nothing
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
