"""Docker Compose v2 against the check's podman API socket, the one override file, and the verdict
on ``compose ps``.

The override (``state/deploycheck/compose.override.yml``, written each run) only

- swaps the images that could not be pulled for their stand-ins (when a stand-in is not tagged with
  the real name),
- adds the simulated exchange as the service ``simexchange``, and
- points the exchanges' base URLs (``BTC_*_URL``) of every service that has them at it.

Everything else is the real ``docker-compose.yml`` read by the real compose loader.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.config import simulated_base_urls

SIMEX_SERVICE = "simexchange"
SIMEX_PORT = 8090
#: compose's refusal of an unset required variable (``${VAR:?message}``).
MISSING_VARIABLE = re.compile(
    r"required variable (?P<name>[A-Za-z_][A-Za-z0-9_]*) is missing a value(?::\s*(?P<message>.*))?"
)


@dataclass
class Compose:
    """The compose binary, the files, the env file and the engine it talks to."""

    binary: Path
    root: Path
    files: Sequence[Path]
    env_file: Path
    env: Mapping[str, str]
    log: Path | None = None

    def argv(self, *args: str, env_file: Path | None = None) -> list[str]:
        argv = [str(self.binary), "--project-directory", str(self.root)]
        for f in self.files:
            argv += ["-f", str(f)]
        return [*argv, "--env-file", str(env_file or self.env_file), *args]

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout_s: float | None = None,
        env_file: Path | None = None,
        show: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose ARGS``: output captured (and appended to the log), or shown (``show``).

        Raises:
            ComposeError: It failed and ``check`` is set.
        """
        argv = self.argv(*args, env_file=env_file)
        done = subprocess.run(
            argv,
            env=dict(self.env),
            capture_output=not show,
            text=True,
            check=False,
            timeout=timeout_s,
        )
        if self.log is not None and not show:
            with self.log.open("a") as out:
                out.write(f"\n$ docker compose {' '.join(args)}  (exit {done.returncode})\n{done.stdout}{done.stderr}")
        if check and done.returncode != 0:
            raise ComposeError(
                f"`docker compose {' '.join(args)}` exited {done.returncode}: {(done.stderr or '')[-2500:]}"
            )
        return done

    def config(self) -> dict[str, Any]:
        """The resolved project (``compose config --format json``)."""
        return dict(json.loads(self.run("config", "--format", "json").stdout))


class ComposeError(RuntimeError):
    """A compose command failed."""


def missing_variable(output: str) -> tuple[str, str] | None:
    """``(variable, compose's message)`` when ``output`` is compose refusing an unset required variable."""
    m = MISSING_VARIABLE.search(output)
    return (m.group("name"), (m.group("message") or "").strip()) if m else None


def override(
    config: Mapping[str, Any], swaps: Mapping[str, str], simex_image: str, simex_port: int = SIMEX_PORT
) -> dict[str, Any]:
    """The override of the resolved project ``config``.

    Args:
        config: ``compose config --format json`` of the real file.
        swaps: Image as the compose file names it -> the stand-in's tag to run instead.
        simex_image: The simulated exchange's image.
        simex_port: Its port in its container.

    Returns:
        The override as a mapping (``services:`` only).
    """
    services: dict[str, Any] = {}
    urls = simulated_base_urls(f"http://{SIMEX_SERVICE}:{simex_port}")
    for name, service in sorted(config.get("services", {}).items()):
        entry: dict[str, Any] = {}
        image = service.get("image")
        if image in swaps and "build" not in service:
            entry["image"] = swaps[image]
        environment = service.get("environment") or {}
        pointed = {var: url for var, url in urls.items() if var in environment}
        if pointed:
            entry["environment"] = pointed
        if entry:
            services[name] = entry
    probe = f"http://localhost:{simex_port}/_health"
    services[SIMEX_SERVICE] = {
        "image": simex_image,
        "healthcheck": {
            "test": ["CMD-SHELL", f"python -c \"import urllib.request; urllib.request.urlopen('{probe}', timeout=5)\""],
            "interval": "10s",
            "timeout": "10s",
            "retries": 5,
            "start_period": "5s",
        },
        "restart": "unless-stopped",
    }
    return {"services": services}


def exchange_url_services(config: Mapping[str, Any]) -> list[str]:
    """The services that read the exchanges' base URLs (they are pointed at the simulated exchange)."""
    variables = set(simulated_base_urls(""))
    return sorted(n for n, s in config.get("services", {}).items() if variables & set(s.get("environment") or {}))


def one_shot_services(config: Mapping[str, Any]) -> set[str]:
    """Services another one waits for with ``condition: service_completed_successfully``."""
    out = set()
    for service in config.get("services", {}).values():
        for dep, how in (service.get("depends_on") or {}).items():
            if (how or {}).get("condition") == "service_completed_successfully":
                out.add(dep)
    return out


@dataclass
class ServiceState:
    """One container of ``compose ps -a``."""

    service: str
    state: str
    health: str = ""
    exit_code: int = 0


def parse_ps(output: str) -> list[ServiceState]:
    """``compose ps -a --format json``: one JSON object a line (compose v2.21+), or one array."""
    text = output.strip()
    if not text:
        return []
    rows = (
        json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    return [
        ServiceState(
            str(r.get("Service", "")), str(r.get("State", "")), str(r.get("Health", "")), int(r.get("ExitCode") or 0)
        )
        for r in rows
    ]


@dataclass
class Verdict:
    """What ``compose ps`` says about every service of the project."""

    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verdict(config: Mapping[str, Any], states: Sequence[ServiceState]) -> Verdict:
    """Every one-shot service exited 0; every other one runs, and is healthy if it has a health check."""
    one_shot = one_shot_services(config)
    by_service = {s.service: s for s in states}
    out = Verdict()
    for name, service in sorted(config.get("services", {}).items()):
        s = by_service.get(name)
        if s is None:
            out.problems.append(f"{name}: no container")
            continue
        if name in one_shot:
            fine = s.state == "exited" and s.exit_code == 0
            out.lines.append(f"{name}: {s.state} ({s.exit_code})")
            if not fine:
                out.problems.append(f"{name}: one-shot job {s.state}, exit code {s.exit_code} (expected exited 0)")
            continue
        has_check = bool(service.get("healthcheck")) and not (service["healthcheck"].get("disable"))
        out.lines.append(f"{name}: {s.state}{', ' + s.health if s.health else ''}")
        if s.state != "running":
            out.problems.append(f"{name}: {s.state} (exit code {s.exit_code}), expected running")
        elif (has_check and s.health != "healthy") or s.health == "unhealthy":
            out.problems.append(f"{name}: {s.health or 'no health status'}, expected healthy")
    return out
