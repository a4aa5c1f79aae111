"""A service of the stack and its supervisor, which starts it in a session of its own with its output in
``<logs>/<name>.log`` and its pid in ``<pids>/<name>.pid`` (see :mod:`devstack.processes`), waits until
it is ready, and stops it with everything it started."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack.config import PORTS, StackError
from devstack.processes import PidFile, group_members, port_is_open, stop_tree

log = logging.getLogger("devstack")


@dataclass
class Service:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    timeout_s: float = 120.0
    #: The ports it listens on (checked to be free before it starts); the first one is its main port.
    ports: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (or a note that there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


class Supervisor:
    """Starts and stops services; each runs in ``cwd`` (unless it names its own) with this process's
    environment, ``env_for(service)`` and its own ``env``."""

    def __init__(self, logs: Path, pids: Path, cwd: Path, env_for: Callable[[Service], Mapping[str, str]]) -> None:
        self.logs, self.pids, self.cwd, self.env_for = logs, pids, cwd, env_for

    def _failure(self, name: str, what: str) -> StackError:
        return StackError(f"{name} {what}; log tail:\n{tail(self.logs / f'{name}.log')}")

    def run_once(self, name: str, argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str]) -> None:
        """Run a set-up command to its end, with its output in ``<logs>/<name>.log``.

        Raises:
            StackError: It failed or did not finish in ``timeout_s`` (the message has the tail of its log).
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        log.info("running %s", name)
        env = {**os.environ, **env}
        with (self.logs / f"{name}.log").open("ab") as out:
            try:
                proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, env=env)
            except subprocess.TimeoutExpired:
                raise self._failure(name, f"did not finish in {timeout_s:.0f}s") from None
        if proc.returncode != 0:
            raise self._failure(name, f"failed with exit code {proc.returncode}")

    def pid_of(self, name: str) -> int | None:
        """The pid of our running process ``name``, or None."""
        return PidFile(self.pids, name).running_pid()

    def start(self, service: Service) -> None:
        """Start ``service`` unless it runs already, and wait until it is ready.

        Raises:
            StackError: One of its ports is taken by a process we did not start, it exited, or it did
                not become ready within its timeout (the message has the tail of its log).
        """
        if (pid := self.pid_of(service.name)) is None:
            self._launch(service)
        elif service.ready():
            log.info("%s already running", service.name)
        else:
            raise StackError(f"{service.name} is running (pid {pid}) but not healthy; run `make down` first")
        if service.after_ready:
            service.after_ready()

    def _launch(self, service: Service) -> None:
        for port in service.ports:
            if port_is_open(port):
                _, setting = PORTS.get(service.name.split("-")[0], (0, "the port"))
                raise StackError(
                    f"port {port} for {service.name} is in use by a process this stack did not start; "
                    f"stop it or set {setting} in .env"
                )
        if service.prepare:
            service.prepare()
        self.logs.mkdir(parents=True, exist_ok=True)
        logfile = self.logs / f"{service.name}.log"
        log.info("starting %s (log: %s)", service.name, logfile)
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                service.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env_for(service), **service.env},
                cwd=service.cwd or self.cwd,
                start_new_session=True,
            )
        pidfile = PidFile(self.pids, service.name)
        pidfile.write(proc.pid)
        deadline = time.monotonic() + service.timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pidfile.remove()
                raise self._failure(service.name, f"exited with code {proc.returncode}")
            if service.ready():
                log.info("%s ready", service.name)
                return
            time.sleep(0.25)
        self.stop(service.name, timeout_s=10)  # leave nothing half-started behind
        raise self._failure(service.name, f"not ready after {service.timeout_s:.0f}s")

    def stop(self, name: str, *, timeout_s: float = 30.0) -> bool:
        """Stop our process ``name`` with its process group and descendants (SIGTERM, then SIGKILL).

        Returns:
            False when it was not running.
        """
        pidfile = PidFile(self.pids, name)
        recorded = pidfile.recorded()
        if recorded is None:
            return False
        pid = recorded[0]
        if pidfile.running_pid() is None and not group_members(pid):
            pidfile.remove()  # gone, and nothing it started is left
            return False
        stop_tree(pid, timeout_s=timeout_s, name=name)  # also when only its orphans are left
        pidfile.remove()
        return True
