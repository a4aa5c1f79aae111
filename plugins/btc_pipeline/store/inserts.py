"""Insert-first writes: the one write FerretDB does without scanning the collection.

On FerretDB's SQLite backend an update or upsert scans the whole collection (measured ~40x slower
than an insert, and growing with the collection); an insert is checked against the unique
indexes by SQLite itself. So every idempotent write here inserts first and treats "this key
exists" as information, not as an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from btc_pipeline.store.layout import month_partition

DUPLICATE_KEY = 11000


def insert_new(collection: Collection[Any], docs: Sequence[Mapping[str, Any]]) -> tuple[int, list[Any]]:
    """Insert ``docs`` with one unordered bulk insert; keys that exist already are left as they are.

    Args:
        collection: Where to insert.
        docs: Documents with their ``_id``.

    Returns:
        How many were inserted, and the ``_id`` of each document whose key existed already.

    Raises:
        pymongo.errors.PyMongoError: Any failure other than "this key exists already".
    """
    if not docs:
        return 0, []
    try:
        return len(collection.insert_many(list(docs), ordered=False).inserted_ids), []
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors) or exc.details.get("writeConcernErrors"):
            raise
        return int(exc.details.get("nInserted", 0)), [docs[error["index"]]["_id"] for error in errors]


def insert_or_replace(collection: Collection[Any], doc: Mapping[str, Any]) -> bool:
    """Insert ``doc``; if its ``_id`` exists (a task retried), replace that document.

    Returns:
        True when it was inserted, False when it replaced an existing one.
    """
    try:
        collection.insert_one(dict(doc))
        return True
    except DuplicateKeyError:
        collection.replace_one({"_id": doc["_id"]}, dict(doc))
        return False


def insert_by_month(db: Database[Any], prefix: str, docs: Iterable[Mapping[str, Any]]) -> int:
    """Insert ``docs`` (each with its ``_id`` and ``ts``) into the month partitions ``<prefix>.<YYYY-MM>``
    of their ``ts`` with :func:`insert_new`, one bulk insert per month.

    Returns:
        How many were inserted (keys that existed already are left as they are).
    """
    by_month: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for doc in docs:
        by_month[month_partition(prefix, doc["ts"])].append(doc)
    return sum(insert_new(db[name], month_docs)[0] for name, month_docs in by_month.items())
