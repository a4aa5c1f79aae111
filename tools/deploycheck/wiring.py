"""A static look at the compose file's wiring, before anything runs: every connection setting that
names a host without a dot (a URI, ``host:port`` lists, Airflow's JSON connections, ``-X
brokers=``) must name a service of the file (or one of its aliases), localhost or an any-address.

A misspelt service name would otherwise show only minutes later, as a data path that never fills.
The running stack remains the proof; this finds the typo first and names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

LOCAL = frozenset({"localhost", "0.0.0.0", "127.0.0.1", "::", "::1"})  # noqa: S104 - names, not a bind
#: ``scheme://[userinfo@]host[:port]``; the user info may hold ``${VAR:?message with spaces}``.
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\"']*@)?(?P<host>[A-Za-z0-9_.-]+)(?::\d+)?")
HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9_.-]+):\d+$")
#: Settings whose value is a comma-separated ``host:port`` list.
HOST_PORT_KEYS = frozenset({"BTC_KAFKA_BOOTSTRAP", "KAFKA_BROKERS", "bootstrap.servers"})
BROKERS_FLAG = re.compile(r"brokers=(?P<list>[A-Za-z0-9_.,:-]+)")


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _hosts_in_value(key: str, value: str) -> Iterator[str]:
    yield from (m.group("host") for m in URI.finditer(value))
    if key in HOST_PORT_KEYS:
        for part in value.split(","):
            m = HOST_PORT.match(part.strip())
            if m:
                yield m.group("host")
    for m in BROKERS_FLAG.finditer(value):
        for part in m.group("list").split(","):
            found = HOST_PORT.match(part)
            if found:
                yield found.group("host")
    if value.lstrip().startswith("{"):
        try:
            conn = json.loads(value)
        except ValueError:
            return
        if isinstance(conn, dict):
            if isinstance(conn.get("host"), str):
                yield conn["host"]
            extra = conn.get("extra")
            if isinstance(extra, dict):
                for k, v in extra.items():
                    if isinstance(v, str):
                        yield from _hosts_in_value(k, v)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def unknown_hosts(config: Mapping[str, Any]) -> list[str]:
    """``"service: VARIABLE names 'host', which is no service"`` for each connection to nowhere."""
    services = config.get("services") or {}
    known = set(services) | LOCAL
    for service in services.values():
        if service.get("hostname"):
            known.add(str(service["hostname"]))
        for network in (service.get("networks") or {}).values() if isinstance(service.get("networks"), dict) else ():
            known.update((network or {}).get("aliases") or [])
    found = []
    for name, service in sorted(services.items()):
        settings = list(_environment(service).items())
        settings += [("command", s) for s in _strings(service.get("command"))]
        settings += [("entrypoint", s) for s in _strings(service.get("entrypoint"))]
        for key, value in settings:
            for host in _hosts_in_value(key, value):
                if "." not in host and host not in known and not host.startswith("$"):
                    found.append(f"{name}: {key} names {host!r}, which is no service of the compose file")
    return sorted(set(found))
