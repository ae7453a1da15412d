"""Ending ``train.py``'s process without Python's module teardown.

Once Lightning is imported (with torch._dynamo, sympy, scipy and matplotlib behind it),
the interpreter's own ending, which frees every module and object one by one, takes
about 1.5 s on a 2-core machine (benchmarks/RESULTS.md). ``without_teardown`` wraps the
command-line entry point: when it ends, by returning or by ``sys.exit``, Python still
joins the process's threads and runs every exit handler registered after it (W&B's
finish, a launcher's worker shutdown, torch's), and then, last, this module's: it flushes
every file object still open for writing (one a callback forgot to close keeps what it
wrote, even where Python's own ending would drop it, as for a file in a reference cycle),
shuts logging down (``train.log``), flushes stdout and stderr, and ends the process with
the same exit status. An exception that escapes (a bug's traceback) takes Python's
ordinary ending.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import logging
import os
import sys
from collections.abc import Iterator


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` gives the process: 0 for None, the integer itself,
    1 for anything else (a message, which Python prints)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def flush_open_files() -> None:
    """Flush every live file object open for writing (type() only: ``isinstance`` would
    ask lazy module proxies for their class, and they warn)."""
    for obj in gc.get_objects():
        if issubclass(type(obj), io.IOBase):
            with contextlib.suppress(Exception):
                if not obj.closed and obj.writable():
                    obj.flush()


@contextlib.contextmanager
def without_teardown() -> Iterator[None]:
    status: list[int] = []

    def end() -> None:
        if not status:  # an exception escaped: Python's own ending
            return
        flush_open_files()
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status[0])

    # Registered before anything the run imports, so it runs after their handlers.
    atexit.register(end)
    try:
        yield
    except SystemExit as exc:
        status.append(exit_status(exc.code))
        raise
    status.append(0)
