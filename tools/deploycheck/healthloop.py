"""``python -m deploycheck.healthloop HOME PROJECT LOG``: run the containers' health checks.

podman runs health checks from systemd timers; without systemd (as here) nothing runs them, and a
container stays "starting" for ever. This loop plays the timers' part for the containers of one
compose project in the check's podman: every container with a health check gets
``podman healthcheck run`` every ``Interval`` of its own, the first one ``Interval`` after it
started, as Docker schedules them, one at a time per container. Each result is a JSON line in LOG
(time, service, container, healthy, output), from which the check reads the time to healthy.

The check starts it before ``compose up`` and stops it by its pid after ``compose down``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploycheck.host import Podman

DEFAULT_INTERVAL_S = 30.0
NS = 1e9


@dataclass
class Scheduled:
    """One container's health check: its interval and timeout, and when it is next due."""

    name: str
    service: str
    interval_s: float
    timeout_s: float
    started: float
    due: float
    running: bool = False


def schedule(inspect: dict[str, Any], now: float) -> Scheduled | None:
    """The schedule of one container (``podman inspect`` of it), or None when it has no health check."""
    config = inspect.get("Config") or {}
    check = config.get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    interval = (check.get("Interval") or 0) / NS or DEFAULT_INTERVAL_S
    timeout = (check.get("Timeout") or 0) / NS or 30.0
    labels = config.get("Labels") or {}
    return Scheduled(
        name=str(inspect.get("Name", "")).lstrip("/"),
        service=str(labels.get("com.docker.compose.service", "")),
        interval_s=interval,
        timeout_s=timeout,
        started=now,
        due=now + interval,
    )


def run_check(podman: Podman, cid: str, item: Scheduled, log: Path, lock: threading.Lock) -> None:
    try:
        done = podman.run("healthcheck", "run", cid, check=False, timeout_s=item.timeout_s + 15)
        healthy, output = done.returncode == 0, (done.stdout + done.stderr).strip()[-300:]
    except subprocess.TimeoutExpired:
        healthy, output = False, f"podman healthcheck run gave no answer in {item.timeout_s + 15:.0f} s"
    record = {"t": time.time(), "service": item.service, "container": item.name, "healthy": healthy, "output": output}
    with lock, log.open("a") as out:
        out.write(json.dumps(record) + "\n")
    item.running = False


def loop(podman: Podman, project: str, log: Path) -> None:
    known: dict[str, Scheduled | None] = {}
    started_at: dict[str, Any] = {}
    lock = threading.Lock()
    while True:
        done = podman.run(
            "ps", "--filter", f"label=com.docker.compose.project={project}", "--format", "json", check=False
        )
        rows = json.loads(done.stdout or "[]") if done.returncode == 0 else []
        now = time.time()
        for row in rows:
            cid = str(row.get("Id", ""))
            if started_at.get(cid) != row.get("StartedAt"):  # new, or restarted: schedule afresh
                started_at[cid] = row.get("StartedAt")
                info = podman.json("inspect", cid) if cid else None
                known[cid] = schedule(info[0], now) if info else None
            item = known.get(cid)
            if item is not None and not item.running and now >= item.due:
                item.running = True
                item.due = now + item.interval_s
                threading.Thread(target=run_check, args=(podman, cid, item, log, lock), daemon=True).start()
        time.sleep(1.0)


def main(argv: list[str]) -> int:
    home, project, log = Path(argv[0]), argv[1], Path(argv[2])
    loop(Podman(home), project, log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
