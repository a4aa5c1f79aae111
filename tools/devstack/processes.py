"""Process control for the local stack: start a service in a session of its own, remember it by pid
and start time, and stop it with everything it started.

Only processes this stack started are ever signalled: the service's own process, the processes
of its process group (the session it was started in), and its descendants (found with psutil
before the first signal, so that children that moved to a group of their own are stopped too).
A recycled pid is never mistaken for ours: the pid file keeps the process's start time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

log = logging.getLogger("devstack")


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (for test stacks that must not collide with a demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URLs only
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_time(pid: int) -> str | None:
    """The start time of a running process as a string (None if it is gone or only a zombie)."""
    try:
        proc = psutil.Process(pid)
        return f"{proc.create_time():.2f}" if _running(proc) else None
    except psutil.Error:
        return None


class PidFile:
    """``<dir>/<name>.pid``: the pid and start time of one service's process."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / f"{name}.pid"

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid} {start_time(pid)}\n")

    def recorded(self) -> tuple[int, str] | None:
        """The pid and start time written, or None (no file, or not ours)."""
        try:
            pid_text, started = self.path.read_text().split()
            return int(pid_text), started
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """The pid, if that very process still runs."""
        recorded = self.recorded()
        if recorded is None:
            return None
        pid, started = recorded
        return pid if start_time(pid) == started else None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def group_members(pgid: int) -> list[psutil.Process]:
    """The running processes of process group ``pgid``.

    A process group id is not reused while the group has a member, so when our service's process
    (the group's leader) has exited, the processes still in its group are its orphans, ours to stop.
    """
    return [proc for proc in _group(pgid) if _running(proc)]


def _group(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


def _running(proc: psutil.Process) -> bool:
    """Running, or a zombie leader whose threads still run (a JVM exiting: its sockets may be open)."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return proc.num_threads() > 1
        return proc.is_running()
    except psutil.Error:
        return False


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [proc for proc in procs if _running(proc)]


def stop_tree(pid: int, *, timeout_s: float, name: str) -> None:
    """Stop process ``pid``, its process group and its descendants: SIGTERM, then SIGKILL after ``timeout_s``.

    Args:
        pid: The service's process, the leader of its own session and process group.
        timeout_s: How long the processes get to exit after SIGTERM.
        name: The service's name, for the log.
    """
    try:
        leader = psutil.Process(pid)
        targets = {leader, *leader.children(recursive=True)}
    except psutil.NoSuchProcess:
        targets = set()
    targets.update(_group(pid))  # orphans of the group, whose parent already exited
    log.info("stopping %s (pid %d, %d process(es))", name, pid, len(targets))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    for proc in targets:
        with contextlib.suppress(psutil.Error):
            proc.terminate()  # also those that left the group
    deadline = time.monotonic() + timeout_s
    remaining = _alive(list(targets))
    while remaining and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
        remaining = _alive(remaining)
    if remaining:
        log.warning("%s: %d process(es) did not stop in %.0fs; killing", name, len(remaining), timeout_s)
        for proc in remaining:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(remaining, timeout=5)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
