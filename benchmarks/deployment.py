"""A deployment for benchmarks that run everything as a user does, each part in its own process.

`vtp sandbox` (the Visma and Tableau sandboxes) on free ports, a DAGSTER_HOME of its own, and the
children's environment that points every process at them; `Processes` starts the daemon, the
webserver and the rest in process groups of their own and stops every group on exit. Used by
freshness.py, nightly_cost.py and many_companies.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

log = logging.getLogger("deployment")

REPOSITORY = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_GRACE_S = 20.0


class Processes:
    """The child processes of one benchmark, each in a process group of its own, stopped as a group.

    Dagster's daemon starts a code server and a process per run, so stopping the daemon's pid
    alone would leave them running; a group of their own also keeps the benchmark's Ctrl-C
    from reaching them before `stop_all` stops them in order.
    """

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Path:
        """Start `argv` with its output in `<logs>/<name>.log`; returns that file."""
        log_file = self._logs / f"{name}.log"
        with log_file.open("wb") as output:
            process = subprocess.Popen(argv, env=env, cwd=REPOSITORY, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._started.append((name, process))
        log.info("started %s (pid %d), output in %s", name, process.pid, log_file)
        return log_file

    def stop(self, name: str) -> None:
        """Stop one process group (SIGINT, then SIGKILL after a grace period)."""
        for index, (started, process) in enumerate(self._started):
            if started == name:
                _stop_group(name, process)
                del self._started[index]
                return

    def stop_all(self) -> None:
        """Stop every group, the latest started first."""
        while self._started:
            name, process = self._started.pop()
            _stop_group(name, process)

    def check_alive(self) -> None:
        """Raise if a process exited: its log says why."""
        for name, process in self._started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self._logs / name}.log")


def _stop_group(name: str, process: subprocess.Popen[bytes]) -> None:
    """SIGINT first, so that uvicorn and the daemon shut down as on Ctrl-C; SIGKILL if they hang."""
    for sig, wait_s in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait_s)
            break
    # The leader has exited; members of its group (run workers) may outlive it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    log.info("stopped %s (exit %s)", name, process.returncode)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, ready: Callable[[], Any], timeout_s: float, processes: Processes,
             every_s: float = 0.5) -> Any:
    """Call `ready()` until it returns something truthy; its value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        processes.check_alive()
        value = ready()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Stack:
    """Where the running deployment is: its folder, its children's environment, the sandboxes."""

    root: Path
    env: dict[str, str]
    visma_url: str
    tableau_url: str
    dagster_home: Path


def _pipeline_env(root: Path) -> dict[str, str]:
    """The environment every child gets: this sandbox run only, no real company."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("VISMA_", "TABLEAU_", "VTP_", "DAGSTER_"))}
    env.update({
        "VTP_HOME": str(root / "vtp"),
        "DAGSTER_HOME": str(root / "dagster"),
        "TMPDIR": str(root / "tmp"),  # `vtp sandbox` keeps the Tableau sandbox's files in a mkdtemp
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_sandboxes(root: Path, size: int, processes: Processes, *,
                    instance_config: Path = REPOSITORY / "dagster.yaml",
                    sandbox_options: Sequence[str] = ()) -> Stack:
    """`vtp sandbox` on free ports (with `sandbox_options`, e.g. `--companies 200`); its printed
    exports complete the children's environment. DAGSTER_HOME gets a copy of `instance_config`."""
    for folder in ("vtp", "dagster", "tmp"):
        (root / folder).mkdir(parents=True)
    shutil.copy(instance_config, root / "dagster" / "dagster.yaml")
    env = _pipeline_env(root)
    output = processes.start("sandbox", [str(BIN / "vtp"), "sandbox", "--size", str(size),
                                         "--visma-port", str(free_port()),
                                         "--tableau-port", str(free_port()), *sandbox_options], env)

    def exports() -> dict[str, str]:
        lines = output.read_text(errors="replace").splitlines()
        found = dict(line.strip().removeprefix("export ").split("=", 1)
                     for line in lines if line.strip().startswith("export "))
        return found if "TABLEAU_SERVER_URL" in found and "VTP_SANDBOX_URL" in found else {}

    found = wait_for("the sandboxes' start", exports, 300, processes)
    env.update(found)
    return Stack(root, env, found["VTP_SANDBOX_URL"], found["TABLEAU_SERVER_URL"], root / "dagster")


def active_runs(dagster_home: Path) -> int:
    """Runs queued, starting or running in the instance of `dagster_home`."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return instance.get_runs_count(dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]))


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so that every started process is stopped (`signal.signal`)."""
    raise SystemExit(128 + signum)
