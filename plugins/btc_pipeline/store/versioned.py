"""Versioned documents: compare-and-set writes on a version field ``v``, the one home of that rule.

A document several writers update (a read-model bucket, the reject summary, a DAG's last runs, the
alerts' state) carries ``v``. A writer reads it, changes it, and writes it back only if ``v`` is
still what it read; otherwise another writer won the race and the change must be made again on
what that writer stored. Version 0 means "no document yet": the first write is an insert, which
the unique ``_id`` makes atomic on every MongoDB-protocol server.

On FerretDB v1 the ``replace_one`` compare-and-set is not atomic across connections (see
:mod:`btc_pipeline.store.locks`): writers hold a lock around it, and the version check still
catches a writer that bypassed the lock or outlived its lease.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.store.inserts import insert_new

#: How often :func:`update_versioned` makes its change again after losing a race.
MAX_ATTEMPTS = 5


class VersionConflictError(BtcPipelineError, RuntimeError):
    """Another writer kept changing a versioned document; the message names it."""


def write_version(collection: Collection[Any], doc_id: Any, version: int, fields: Mapping[str, Any]) -> bool:
    """Store ``fields`` as version ``version + 1`` of document ``doc_id``, if it is still at ``version``.

    Args:
        collection: Where the document lives.
        doc_id: Its ``_id``.
        version: The version that was read (0: there was no document).
        fields: The new content (``_id`` and ``v`` are set here).

    Returns:
        True when written; False when another writer changed or created the document meanwhile.
    """
    doc = {**fields, "_id": doc_id, "v": version + 1}
    if version == 0:
        try:
            collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True
    return collection.replace_one({"_id": doc_id, "v": version}, doc).matched_count == 1


def insert_first_versions(collection: Collection[Any], docs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Store new documents as their version 1 with one bulk insert (a batch of :func:`write_version`
    calls at version 0).

    Returns:
        The ``_id`` of each document another writer had created meanwhile (not written).
    """
    _, existing = insert_new(collection, [{**doc, "v": 1} for doc in docs])
    return existing


def update_versioned(
    collection: Collection[Any],
    doc_id: Any,
    change: Callable[[Mapping[str, Any] | None], Mapping[str, Any] | None],
    *,
    attempts: int = MAX_ATTEMPTS,
) -> bool:
    """Read document ``doc_id``, apply ``change`` and write the result back with compare-and-set,
    starting over on what the winner stored each time another writer won.

    Args:
        collection: Where the document lives.
        doc_id: Its ``_id``.
        change: Given the stored document (``None``: none yet), the new content, or ``None`` when
            there is nothing to write. It may run several times: keep it free of side effects.
        attempts: How many races to lose before giving up.

    Returns:
        True when a new version was written, False when ``change`` had nothing to write.

    Raises:
        VersionConflictError: Another writer won ``attempts`` times in a row.
    """
    for _ in range(attempts):
        current = collection.find_one({"_id": doc_id})
        fields = change(current)
        if fields is None:
            return False
        if write_version(collection, doc_id, int((current or {}).get("v", 0)), fields):
            return True
    raise VersionConflictError(
        f"{collection.full_name} {doc_id!r} kept changing under this writer for {attempts} attempts"
    )
