"""When a lasting problem is worth a message: a DAG that keeps failing, data that stays stale.

An *episode* runs from the first report of a problem until it clears. Its first report is sent,
later ones only as a reminder once ``repeat`` has passed since the last message (never, when
``repeat`` is ``None``), and the end is sent once. Pure functions over an immutable state: the
store keeps one per key (see :mod:`btc_pipeline.store.notifications`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from btc_pipeline.timeutil import to_utc

Say = Literal["first", "reminder"]


@dataclass(frozen=True)
class Episode:
    """A problem's state: open since ``since`` with ``count`` reports, last told at ``last_sent``."""

    open: bool = False
    since: datetime | None = None
    last_sent: datetime | None = None
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> Episode:
        """The episode a stored document (:meth:`to_dict`) holds; none stored: closed."""
        if not doc:
            return cls()
        since, last = doc.get("since"), doc.get("last_sent")
        return cls(
            bool(doc.get("open")),
            to_utc(since) if since else None,
            to_utc(last) if last else None,
            int(doc.get("count", 0)),
        )


def report(
    episode: Episode, now: datetime, repeat: timedelta | None, *, since: datetime | None = None
) -> tuple[Say | None, Episode]:
    """The problem is seen (again) at ``now`` (``since``: when it began, if known; else ``now``).

    Returns:
        ``"first"`` when it starts an episode, ``"reminder"`` when ``repeat`` has passed since the
        last message, else ``None``; and the new state.
    """
    if not episode.open:
        return "first", Episode(True, since or now, now, 1)
    counted = replace(episode, count=episode.count + 1)
    last = episode.last_sent or episode.since or now
    if repeat is not None and now - last >= repeat:
        return "reminder", replace(counted, last_sent=now)
    return None, counted
