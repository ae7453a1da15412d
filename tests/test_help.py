"""``train.py --help``: ganzoo's own page from the config files, without composing."""

import subprocess
import sys
from pathlib import Path

from ganzoo import quickhelp

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_group_and_option_with_the_defaults_first():
    page = quickhelp.text(ROOT / "conf")
    lines = {line.split()[0]: line for line in page.splitlines() if line.startswith("  ")
             and len(line.split()) > 1}
    for group in (ROOT / "conf").iterdir():
        if not group.is_dir() or group.name in quickhelp.HIDDEN:
            continue
        options = {f.stem for f in group.glob("*.yaml")}
        listed = lines[group.name].split(None, 1)[1].replace(" (default)", "").split(" | ")
        assert set(listed) == options, group.name
    assert lines["loss"].split(None, 1)[1].startswith("nonsaturating (default) | ")
    assert lines["data"].split(None, 1)[1].startswith("ring (default) | ")
    assert "  steps: 4000" in page and "r1_gamma" not in page


def test_help_on_the_command_line_exits_0_without_hydra_or_torch():
    code = ("import runpy, sys; sys.argv = ['train.py', '--help']\n"
            "try:\n    runpy.run_path('train.py', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "print(sorted(m for m in ('hydra', 'torch', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("ganzoo: train a GAN.")
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert out.stderr == ""


def test_help_with_overrides_is_hydras_for_that_composition():
    out = subprocess.run([sys.executable, "train.py", "loss=wgan_gp", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "== Config ==" in out.stdout
    assert "_target_: ganzoo.losses.Wasserstein" in out.stdout
