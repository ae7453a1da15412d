"""``train.py --help``, answered from the config files without composing anything.

Hydra's own ``--help`` composes the config and then, for each of the config groups, a
config repository of its own: about a second here before anything is printed. This
help lists the groups and their options from ``conf/`` and the run-level settings from
``conf/train.yaml`` as written there (with their comments); ``--cfg job`` prints the
composed config and ``--hydra-help`` Hydra's options. ``--help`` given with overrides is
Hydra's help for that composition.
"""

from __future__ import annotations

import re
from pathlib import Path

# Groups users choose from; the others (base, tuning, hydra) are composed by these.
HIDDEN = ("base", "hydra", "tuning")


def text(conf: Path) -> str:
    train = (conf / "train.yaml").read_text().splitlines()
    defaults = dict(re.findall(r"^  - (?:optional )?(\w+): (\S+)", "\n".join(train), re.M))
    groups = []
    for group in sorted(p for p in conf.iterdir() if p.is_dir() and p.name not in HIDDEN):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        first = defaults.get(group.name)
        if first in options:
            options.remove(first)
            options.insert(0, f"{first} (default)")
        groups.append(f"  {group.name:<11} {' | '.join(options)}")
    start = next(i for i, line in enumerate(train) if re.match(r"^\w", line)
                 and not line.startswith("defaults"))
    end = next(i for i, line in enumerate(train) if line.startswith("hydra:"))
    settings = ["  " + line for line in train[start:end]
                if line.strip() and "replaced by" not in line]  # not the retired keys
    return "\n".join([
        "ganzoo: train a GAN. Model, data and loss are each one choice on the command line.",
        "",
        "usage: uv run train.py [group=option ...] [key=value ...]",
        "       uv run train.py -m loss=minimax,nonsaturating seed=0,1,2    (a sweep)",
        "",
        "config groups (conf/<group>/<option>.yaml):",
        *groups,
        "",
        "settings (conf/train.yaml; nested keys with dots: optim.g.lr=1e-4):",
        *settings,
        "",
        "more:",
        "  uv run train.py --cfg job [overrides]   the composed config",
        "  uv run train.py [overrides] --help      Hydra's help for that composition",
        "  uv run train.py --hydra-help            Hydra's own options",
        "  README.md, docs/                        losses, extending, benchmarks",
    ])
