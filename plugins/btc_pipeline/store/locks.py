"""Writer locks: one writer at a time for the documents several processes update.

Measured on FerretDB v1 (SQLite): a compare-and-set ``replace_one({"_id": x, "v": n}, ...)`` is not
atomic across connections: two writers racing 200 times each both "succeeded" 400 times, and 155
updates were lost. An *insert* is atomic (SQLite checks the unique ``_id`` index in the statement),
so a lock is a document inserted into ``locks`` and deleted by its owner; a lock older than its
lease (a writer that died) is taken over. On MongoDB the compare-and-set alone would do; the lock
costs two small writes there too, and the same code runs on both.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.timeutil import to_utc

log = logging.getLogger(__name__)

LOCKS = "locks"


class LockTimeoutError(BtcPipelineError, RuntimeError):
    """Another writer held the lock for longer than the wait allowed."""


#: How long a writer's "I am waiting" mark counts (a waiter renews it while it waits).
WANTED_S = 2.0


def _wanted(name: str) -> str:
    return f"{name}.wanted"


@contextmanager
def locked(
    db: Database[Any], name: str, *, lease_s: float = 60.0, wait_s: float = 120.0, low_priority: bool = False
) -> Iterator[None]:
    """Hold the lock ``name`` for the ``with`` block.

    A writer that finds the lock taken marks that it waits (``<name>.wanted``); a ``low_priority``
    writer (the history drain, which takes the lock once per day of candles) does not take a free
    lock while such a mark is fresh, so live writers never queue behind a long series of history
    writes, only behind the one in progress.

    Args:
        db: The database.
        name: What is locked (``bars``, ``latest``, ...).
        lease_s: After this long a lock counts as abandoned and may be taken over.
        wait_s: How long to wait for another writer.
        low_priority: Let waiting writers go first.

    Raises:
        LockTimeoutError: The lock stayed taken for ``wait_s``.
    """
    owner = uuid.uuid4().hex
    locks = db[LOCKS]
    deadline = time.monotonic() + wait_s
    pause = 0.02
    marked = False
    while True:
        now = datetime.now(UTC)
        try:
            mark = locks.find_one({"_id": _wanted(name)}) if low_priority else None
            if mark is not None and to_utc(mark["expires"]) > now:
                raise DuplicateKeyError("a writer is waiting")
            locks.insert_one({"_id": name, "owner": owner, "since": now, "expires": now + timedelta(seconds=lease_s)})
            break
        except DuplicateKeyError:
            if not low_priority:
                mark = {"owner": owner, "expires": now + timedelta(seconds=WANTED_S)}
                try:
                    locks.replace_one({"_id": _wanted(name)}, mark, upsert=True)
                    marked = True
                except DuplicateKeyError:  # two waiters' upserts raced (FerretDB): the other's mark is as fresh
                    pass
            held = locks.find_one({"_id": name})
            if held is not None and to_utc(held["expires"]) < now:
                log.warning("lock %s of %s expired at %s: taking it over", name, held.get("owner"), held["expires"])
                locks.delete_one({"_id": name, "owner": held.get("owner")})
                continue
            if time.monotonic() > deadline:
                raise LockTimeoutError(f"lock {name!r} in {db.name}.{LOCKS} still held after {wait_s:.0f} s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
    if marked:
        locks.delete_one({"_id": _wanted(name), "owner": owner})
    try:
        yield
    finally:
        locks.delete_one({"_id": name, "owner": owner})
