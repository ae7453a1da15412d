"""Starting the other DDP ranks of a Hydra job: each re-runs the same job (its overrides,
its run directory) as a subprocess, watched so that one rank's failure stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from ganzoo._compat import SubprocessScriptLauncher, set_num_threads_if_needed

_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _hydra_child_command() -> tuple[list[str], str]:
    """The command that runs this Hydra job as another rank, and the directory to run it in.

    The job's own overrides (also for one job of a multirun), its resolved run
    directory, and no ``.hydra`` folder or log file of its own.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    script = _SCRIPT or os.path.abspath(sys.argv[0])
    run_dir = hc.runtime.output_dir.replace("\\", "\\\\").replace('"', '\\"')
    command = [sys.executable, script, f"--config-name={hc.job.config_name}"]
    for source in hc.runtime.config_sources:
        if source.provider == "command-line":
            command.append(f"--config-dir={source.path}")
    command += list(hc.overrides.task)
    command += [f'hydra.run.dir="{run_dir}"', "hydra.output_subdir=null",
                "hydra/job_logging=none", "hydra/hydra_logging=none"]
    return command, get_original_cwd()


_SCRIPT: str | None = None  # the entry script the other ranks re-run (set by train.py)


def set_entry_script(path: str) -> None:
    global _SCRIPT
    _SCRIPT = os.path.abspath(path)


class HydraLauncher(SubprocessScriptLauncher):
    """Lightning's per-node subprocess launcher, made safe for Hydra and for sweeps.

    Other ranks re-run the Hydra job (not ``sys.argv``, which may hold a whole
    ``-m`` sweep) into the same run directory. When training ends, this process waits
    for them and restores the environment, so the next job of a multirun starts
    afresh; if training fails here, the other ranks are stopped.
    """

    def launch(self, function: Callable, *args: Any, trainer=None, **kwargs: Any) -> Any:
        self.cluster_environment.validate_settings(num_devices=self.num_processes,
                                                   num_nodes=self.num_nodes)
        if self.cluster_environment.creates_processes_externally:  # SLURM, torchrun, a rank
            set_num_threads_if_needed(num_processes=self.num_processes)
            return function(*args, **kwargs)
        saved = {k: os.environ.get(k) for k in _LAUNCH_ENV}
        observer = None
        ok = False
        try:
            self._start_ranks()
            observer = _RankObserver(self.procs)
            observer.start()
            set_num_threads_if_needed(num_processes=self.num_processes)
            result = function(*args, **kwargs)
            ok = True
            return result
        finally:
            if observer is not None:
                observer.stop()
            self._finish_ranks(ok)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _start_ranks(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        from ganzoo.config import ConfigError

        self._check_can_spawn_children()
        if self.num_processes > 1 and not HydraConfig.initialized():
            raise ConfigError(
                "trainer.strategy: ddp on several devices starts one process per device by "
                "re-running the train.py command; run it from the command line (or start "
                "the ranks with torchrun / SLURM)")
        env = self.cluster_environment
        os.environ.update(MASTER_ADDR=env.main_address, MASTER_PORT=str(env.main_port),
                          NODE_RANK=str(env.node_rank()), LOCAL_RANK=str(env.local_rank()),
                          WORLD_SIZE=str(self.num_processes * self.num_nodes))
        if self.num_processes == 1:
            return
        command, cwd = _hydra_child_command()
        for local_rank in range(1, self.num_processes):
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            self.procs.append(subprocess.Popen(command, env=child_env, cwd=cwd))

    def _finish_ranks(self, ok: bool) -> None:
        for proc in self.procs:
            try:
                # After a failure here the others stop too (they reach the same check, or
                # their next collective fails); one still waiting after the grace is killed.
                proc.wait(timeout=None if ok else 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _RankObserver(threading.Thread):
    """Stops this process if another rank dies, instead of waiting in a collective."""

    def __init__(self, procs: list[subprocess.Popen]) -> None:
        super().__init__(daemon=True, name="ganzoo-rank-observer")
        self.procs, self._stop_event = procs, threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(2.0):
            failed = [p for p in self.procs if p.poll() not in (None, 0)]
            if failed and not self._stop_event.is_set():
                print(f"error: a training rank (pid {failed[0].pid}) exited with status "
                      f"{failed[0].returncode}; stopping all ranks", file=sys.stderr)
                for p in self.procs:
                    if p.poll() is None:
                        p.kill()
                os.kill(os.getpid(), signal.SIGKILL)
