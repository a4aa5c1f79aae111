"""A real FerretDB for the store's own tests (started alone: a second, not a whole stack), with a
database of each test's own."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from devstack import Stack
from devstack.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ferretdb() -> Iterator[MongoClient[Any]]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    state = ROOT / "state" / f"test-ferretdb-{worker}"
    shutil.rmtree(state, ignore_errors=True)
    stack = Stack("test", state_dir=state, ports={"mongo": free_port()})
    try:
        stack.up(only=["ferretdb"])
        client: MongoClient[Any] = MongoClient(stack.mongo_uri, tz_aware=True)
        yield client
        client.close()
    finally:
        stack.down(timeout_s=5)


@pytest.fixture
def db(ferretdb: MongoClient[Any]) -> Iterator[Database[Any]]:
    name = f"store_{uuid.uuid4().hex[:8]}"
    yield ferretdb[name]
    ferretdb.drop_database(name)
