"""The exceptions a run ends with, in a module without torch or Lightning, so that the
entry point can catch them before (and without) importing the training stack: a refused
command costs a fraction of a second, not the import of torch and Lightning.

Each is re-exported where it is raised (``ganzoo.config.ConfigError``,
``ganzoo.checkpoint.CheckpointError``, ``ganzoo.guard.NonFiniteLossError``).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


class CheckpointError(ValueError):
    """A file that cannot be used as a ganzoo checkpoint; the message says why."""


class NonFiniteLossError(RuntimeError):
    """Raised when a loss stops being finite or runs away."""
