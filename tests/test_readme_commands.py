"""Every `uv run train.py ...` command in the README and docs composes, as a shell passes it.

A command is a line that starts with it (code blocks, indented or fenced; continuation
lines joined; not inline code in prose), split as a
shell splits it (comments dropped, $VARIABLES expanded), parsed by Hydra's override
grammar, and composed with the first value of each sweep: a documented command that
Hydra's lexer refuses (an unquoted ``~``), or a key that does not exist, fails here.
"""

from __future__ import annotations

import os
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from .conftest import CONF, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for line in doc.read_text().replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("uv run train.py"):
                found.append((doc.name, line))
    return found


COMMANDS = _commands()


def test_the_docs_have_commands():
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("doc, line", COMMANDS, ids=[f"{d}:{c[16:60]}" for d, c in COMMANDS])
def test_a_documented_command_composes(doc, line):
    words = [os.path.expandvars(w) for w in shlex.split(line, comments=True)][3:]
    overrides = [w for w in words if not w.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(overrides)  # the lexer, as Hydra runs
    first = []
    for override in parsed:
        key = override.get_key_element()
        if key.lstrip("+~").startswith("hydra"):
            continue  # launcher and run-directory settings: Hydra's own config
        value = (next(iter(override.sweep_string_iterator())) if override.is_sweep_override()
                 else override.get_value_element_as_str())
        first.append(f"{key}={value}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            compose("train", overrides=first)
    finally:
        GlobalHydra.instance().clear()
