"""ganzoo.ending: train.py's process ends after every exit handler, without Python's
module teardown, with the exit status it would have had, and nothing written is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ganzoo.ending import exit_status

ROOT = Path(__file__).resolve().parents[1]


HEAD = """\
import atexit, sys
sys.path.insert(0, {root!r})
from ganzoo.ending import without_teardown


class Teardown:  # reachable from this module to the end: freed only by teardown
    def __del__(self):
        print("module teardown ran", flush=True)


KEPT = Teardown()
OUT = {out!r}
LOG = open(OUT + "/module_level.txt", "w")  # never closed


def main():
"""
TAIL = """

with without_teardown():
    main()
"""


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "entry.py"
    script.write_text(HEAD.format(root=str(ROOT), out=str(tmp_path))
                      + textwrap.indent(textwrap.dedent(body).strip(), "    ") + TAIL)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)


def test_exit_status_is_what_sys_exit_gives():
    assert [exit_status(c) for c in (None, 0, 2, 130, True, "a message", 2.5)] == \
        [0, 0, 2, 130, 1, 1, 1]


def test_returns_zero_after_the_handlers_without_teardown(tmp_path):
    proc = run_script(tmp_path, """
        # a handler registered during the run (as W&B's is) still runs
        atexit.register(lambda: open(OUT + "/handler", "w").write("ran"))
        LOG.write("kept too")
        # a file left open in a reference cycle (Python's own ending loses its buffer)
        class Holder:
            pass
        h = Holder()
        h.me, h.f = h, open(OUT + "/unclosed.txt", "w")
        h.f.write("kept")
        print("trained")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "trained\n"  # "module teardown ran" would follow otherwise
    assert proc.stderr == ""
    assert (tmp_path / "handler").read_text() == "ran"
    assert (tmp_path / "unclosed.txt").read_text() == "kept"
    assert (tmp_path / "module_level.txt").read_text() == "kept too"


@pytest.mark.parametrize(("call", "status", "stderr"), [
    ("sys.exit(2)", 2, ""),
    ("sys.exit(128 + 15)", 143, ""),
    ("sys.exit('error: a message')", 1, "error: a message\n"),
    ("sys.exit()", 0, ""),
])
def test_sys_exit_keeps_its_status_and_message(tmp_path, call, status, stderr):
    proc = run_script(tmp_path, f"print('before', flush=False)\n{call}")
    assert (proc.returncode, proc.stdout, proc.stderr) == (status, "before\n", stderr)


def test_an_escaping_exception_takes_pythons_own_ending(tmp_path):
    proc = run_script(tmp_path, "raise RuntimeError('a bug')")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "RuntimeError: a bug"
    assert proc.stdout == "module teardown ran\n"
