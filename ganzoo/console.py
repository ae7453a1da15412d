"""One line for a command line Hydra refuses, as for every other bad input.

Hydra reports a bad override or an unknown option before ``train.py``'s own code runs,
over several lines ("Could not override ...", "Key ... is not in struct", "full_key: ...",
"Set the environment variable HYDRA_FULL_ERROR=1 ..."). ``one_line_errors`` holds back
what is written to stderr until the task function starts (``started()``); if the
command ends before that, the held text is printed as one ``error: ...`` line and the
exit status is 2, as for ganzoo's own refusals. Once a job has started nothing is held.
``HYDRA_FULL_ERROR=1`` keeps Hydra's full report.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator

_held: io.StringIO | None = None
_stderr = sys.stderr

# Lines of Hydra's report that add no information to the one line.
_NOISE = ("Set the environment variable HYDRA_FULL_ERROR", "object_type=", "full_key:")


def started() -> None:
    """The task function runs: write what was held and stop holding."""
    global _held
    if _held is not None and sys.stderr is not _stderr:
        sys.stderr = _stderr
        _stderr.write(_held.getvalue())
        _held = None


def one_line(text: str) -> str:
    """Hydra's multi-line report as one line: its lines joined by '; ', noise dropped;
    a Python traceback as its last line."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(_NOISE)]
    if "Config search path:" in lines:  # where Hydra looked: not what the user typed
        lines = lines[:lines.index("Config search path:")]
    if lines and lines[0].startswith("Traceback"):
        # Before a job starts, Hydra's only file operation is making its directory.
        found = re.match(r"^\w*Error: \[Errno \d+\] (.+?): '(.+)'$", lines[-1])
        if found:
            return (f"{found.group(2)}: {found.group(1).lower()}; the run directory "
                    "(hydra.run.dir, or hydra.sweep.dir with -m) must be writable")
        return lines[-1]
    out: list[str] = []
    for ln in lines:  # "Available options in 'loss':" then one option per line
        if out and out[-1].endswith(":") and not ln.endswith(":"):
            out[-1] += " " + ln
        elif out and out[-1].startswith("Available options") and not ln.endswith(":"):
            out[-1] += ", " + ln
        else:
            out.append(ln.rstrip("."))
    return "; ".join(out)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    global _held, _stderr
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        yield
        return
    _stderr, _held = sys.stderr, io.StringIO()
    sys.stderr = _held
    try:
        yield
    except SystemExit as exc:
        if _held is None or exc.code in (0, None):
            raise
        text = _held.getvalue()
        sys.stderr, _held = _stderr, None
        if not text.strip():
            raise
        _stderr.write(f"error: {one_line(text)}\n")
        raise SystemExit(2) from None
    finally:
        if _held is not None:  # ended normally before a job started (e.g. --help)
            sys.stderr = _stderr
            _stderr.write(_held.getvalue())
            _held = None
