"""Bucket documents: one series' bars at one level over one span, as parallel arrays (see
:mod:`btc_pipeline.store.layout`), read and written with optimistic concurrency.

A bucket document::

    {"_id": "2026-11-26T16:00:00Z", "series": "coinbase", "level": "1m", "start": ISODate(...),
     "v": 7, "open": [..60 numbers or null..], "high": [...], "low": [...], "close": [...],
     "volume": [...], "n": [...], "fetched": [...]}          # fetched / first / last: provenance

Writes are compare-and-set on ``v``: an insert for a new bucket, a replace of version ``v`` for an
existing one. A writer that loses the race gets :class:`BucketConflictError` and starts over from what
is stored; every maintenance step is a merge or a recomputation, so starting over is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from btc_pipeline.bars import Bar
from btc_pipeline.store.layout import LEVELS, Level
from btc_pipeline.store.versioned import VersionConflictError, insert_first_versions, write_version
from btc_pipeline.timeutil import format_ts, to_utc

log = logging.getLogger(__name__)

PRICE_FIELDS = ("open", "high", "low", "close", "volume", "n")
PROVENANCE_FIELDS = ("fetched", "first", "last")


class BucketConflictError(VersionConflictError):
    """Another writer changed a bucket since it was read; the write was not made."""


@dataclass
class Bucket:
    """The bars of one series at one level in one span; ``version`` 0 = not stored yet."""

    level: Level
    series: str
    start: datetime
    bars: list[Bar | None]
    version: int = 0
    dirty: bool = field(default=False, compare=False)

    @classmethod
    def empty(cls, level: Level, series: str, start: datetime) -> Bucket:
        return cls(level, series, start, [None] * level.slots(start))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Bucket:
        """A bucket from its stored document.

        Raises:
            ValueError: The document is not a bucket of this layout.
        """
        level = LEVELS[doc["level"]]
        start = to_utc(doc["start"])
        size = level.slots(start)
        columns = {name: list(doc.get(name) or [None] * size) for name in (*PRICE_FIELDS, *PROVENANCE_FIELDS)}
        if any(len(values) != size for values in columns.values()):
            raise ValueError(f"bucket {doc.get('_id')!r} of {doc.get('series')!r} does not have {size} slots")
        bars: list[Bar | None] = []
        for o, h, lo, c, volume, n, fetched, first, last in zip(*columns.values(), strict=True):  # Bar's field order
            bars.append(None if c is None else Bar(o, h, lo, c, volume, n or 1, fetched, first, last))
        return cls(level, str(doc["series"]), start, bars, int(doc.get("v", 1)))

    @property
    def id(self) -> str:
        return format_ts(self.start)

    @property
    def collection(self) -> str:
        return self.level.collection(self.series, self.start)

    def to_doc(self) -> dict[str, Any]:
        """The document to store (provenance arrays only when some bar has them)."""
        doc: dict[str, Any] = {
            "_id": self.id,
            "series": self.series,
            "level": self.level.name,
            "start": self.start,
            "updated_at": datetime.now(UTC),
        }
        for name in (*PRICE_FIELDS, *PROVENANCE_FIELDS):
            values = [None if b is None else getattr(b, name) for b in self.bars]
            if name in PRICE_FIELDS or any(v is not None for v in values):
                doc[name] = values
        return doc

    def get(self, ts: datetime) -> Bar | None:
        return self.bars[self.level.slot(self.start, ts)]

    def set(self, ts: datetime, bar: Bar | None) -> bool:
        """Put ``bar`` in the slot of ``ts``; returns whether that changed the bucket."""
        i = self.level.slot(self.start, ts)
        if self.bars[i] == bar:
            return False
        self.bars[i] = bar
        self.dirty = True
        return True

    def items(self) -> Iterator[tuple[datetime, Bar]]:
        """The bars present, with their start time, oldest first."""
        for i, bar in enumerate(self.bars):
            if bar is not None:
                yield self.start + self.level.bar * i, bar

    def slice(self, start: datetime, end: datetime) -> list[Bar | None]:
        """The slots of the bars in ``[start, end)`` (which must lie inside the bucket)."""
        return self.bars[self.level.slot(self.start, start) : self.level.slot(self.start, end)]


class BucketStore:
    """Reads buckets (each once per unit of work) and writes the changed ones back."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self._cache: dict[tuple[str, str, datetime], Bucket] = {}

    def load(self, level: Level, series: str, start: datetime) -> Bucket:
        """The stored bucket (an empty one when there is none), cached until :meth:`reset`."""
        key = (level.name, series, start)
        bucket = self._cache.get(key)
        if bucket is None:
            doc = self.db[level.collection(series, start)].find_one({"_id": format_ts(start)})
            bucket = Bucket.from_doc(doc) if doc else Bucket.empty(level, series, start)
            self._cache[key] = bucket
        return bucket

    def preload(self, level: Level, series: str, starts: Iterable[datetime]) -> None:
        """Read the buckets starting at ``starts`` with one query per collection instead of one each.

        A collection holds a bounded period of one series (a day of hourly 1-minute buckets, see
        :mod:`btc_pipeline.store.layout`), so reading it whole costs what reading its buckets one
        by one would, in one round trip: what the history drain does for a day of candles.
        """
        wanted: dict[str, list[datetime]] = {}
        for start in starts:
            if (level.name, series, start) not in self._cache:
                wanted.setdefault(level.collection(series, start), []).append(start)
        for name, bucket_starts in wanted.items():
            docs = {doc["_id"]: doc for doc in self.db[name].find({})}
            for start in bucket_starts:
                doc = docs.get(format_ts(start))
                self._cache[(level.name, series, start)] = (
                    Bucket.from_doc(doc) if doc else Bucket.empty(level, series, start)
                )

    def reset(self) -> None:
        """Forget what was read (to start a unit of work over after a conflict)."""
        self._cache.clear()

    def save_all(self, order: Iterable[str]) -> int:
        """Write every changed bucket, level by level in ``order`` (finer levels first): a stored one
        as version ``version + 1`` with compare-and-set, the new ones of a collection with one bulk insert.

        Returns:
            How many buckets were written.

        Raises:
            BucketConflictError: Another writer created or changed one of them since it was read.
        """
        written = 0
        for name in order:
            dirty = [b for b in sorted(self._cache.values(), key=lambda b: (b.series, b.start)) if b.dirty]
            new: dict[str, list[Bucket]] = {}
            for bucket in (b for b in dirty if b.level.name == name):
                if bucket.version == 0:
                    new.setdefault(bucket.collection, []).append(bucket)
                elif write_version(self.db[bucket.collection], bucket.id, bucket.version, bucket.to_doc()):
                    bucket.version, bucket.dirty = bucket.version + 1, False
                else:
                    raise BucketConflictError(f"{bucket.collection} {bucket.id} changed since version {bucket.version}")
                written += 1
            for collection, buckets in new.items():
                existing = insert_first_versions(self.db[collection], [b.to_doc() for b in buckets])
                if existing:  # another writer created some since they were read: start over on what it stored
                    raise BucketConflictError(
                        f"{collection}: {len(existing)} bucket(s) created by another writer meanwhile"
                    )
                for bucket in buckets:
                    bucket.version, bucket.dirty = 1, False
        return written
