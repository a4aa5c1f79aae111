#!/usr/bin/python3
"""Entrypoint of the FerretDB stand-in for MongoDB (see ``tools/deploycheck/standins/README.md``).

It reads the environment the ``mongo`` image reads and runs FerretDB v1 (SQLite backend, data in
``/data/db``) with SCRAM authentication:

- ``MONGO_INITDB_ROOT_USERNAME`` / ``MONGO_INITDB_ROOT_PASSWORD``: the user FerretDB creates in
  ``admin`` when the volume is new (``--setup-*``); without them FerretDB runs without auth, as
  mongod does.
- The scripts in ``/docker-entrypoint-initdb.d`` are **not run** (there is no mongosh, and FerretDB
  v1 has no roles). For the project's ``create-readonly-user.js`` the stand-in creates the user
  that script creates, from the same variables (``MONGO_READER_USER`` / ``MONGO_READER_PASSWORD``),
  without the ``read`` role: FerretDB lets that user write too.

Passwords go to FerretDB through its environment, never on a command line or in a log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FERRETDB = "/usr/local/bin/ferretdb"
DATA = Path("/data/db")
INITDB = Path("/docker-entrypoint-initdb.d")
PORT = 27017


def ferretdb_argv(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """FerretDB's command line and environment for the mongo image's variables."""
    argv = [
        FERRETDB,
        f"--listen-addr=:{PORT}",
        "--handler=sqlite",
        f"--sqlite-url=file:{DATA}/",
        "--telemetry=disable",
        "--log-level=warn",
        "--state-dir=/tmp",
    ]
    child_env = {k: v for k, v in env.items() if not k.startswith("MONGO_")}
    user, password = env.get("MONGO_INITDB_ROOT_USERNAME", ""), env.get("MONGO_INITDB_ROOT_PASSWORD", "")
    if user and password:
        argv += ["--test-enable-new-auth", "--setup-database=admin", f"--setup-username={user}"]
        child_env["FERRETDB_SETUP_PASSWORD"] = password
    return argv, child_env


def wait_for_port(deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.3)
    return False


def create_reader(env: dict[str, str]) -> str:
    """Create the read-only user of ``mongo-init/`` (without its role) unless it exists; what was done."""
    reader, reader_password = env.get("MONGO_READER_USER", ""), env.get("MONGO_READER_PASSWORD", "")
    root, root_password = env.get("MONGO_INITDB_ROOT_USERNAME", ""), env.get("MONGO_INITDB_ROOT_PASSWORD", "")
    if not (reader and reader_password and root and root_password):
        return "no MONGO_READER_USER/PASSWORD (or no root user): no reader user created"
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(
        "127.0.0.1", PORT, username=root, password=root_password, authSource="admin", serverSelectionTimeoutMS=10_000
    )
    try:
        known = client.admin.command("usersInfo", reader).get("users", [])
        if known:
            return f"reader user {reader!r} exists"
        client.admin.command("createUser", reader, pwd=reader_password, roles=[])
        return f"created reader user {reader!r} in admin (FerretDB v1 has no roles: it can write too)"
    finally:
        client.close()


def main(argv: list[str]) -> int:
    if argv and argv[0] != "mongod" and not argv[0].startswith("-"):
        os.execvp(argv[0], argv)  # noqa: S606 - become the command, as an entrypoint does
    env = dict(os.environ)
    DATA.mkdir(parents=True, exist_ok=True)
    scripts = sorted(p.name for p in INITDB.glob("*")) if INITDB.is_dir() else []
    print(
        "FerretDB v1 stand-in for MongoDB (tools/deploycheck/standins/README.md); "
        f"initdb scripts NOT run: {', '.join(scripts) or 'none'}",
        flush=True,
    )
    cmd, child_env = ferretdb_argv(env)
    child = subprocess.Popen(cmd, env=child_env)

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    if wait_for_port(60):
        try:
            print(f"mongo stand-in: {create_reader(env)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - report and stop: the container must not look healthy
            print(f"mongo stand-in: could not create the reader user: {type(exc).__name__}: {exc}", flush=True)
            child.terminate()
            child.wait()
            return 1
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
