"""Time values in one place: UTC ISO-8601 in and out, and the relative times (``2h``, ``30d``) that
the CLI and the API accept.

Everything the pipeline stores or sends is an aware UTC datetime; text is ISO-8601 read with
:meth:`datetime.fromisoformat` (Python 3.11 reads ``Z``) and written by :func:`format_ts`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from btc_pipeline.errors import BtcPipelineError

#: Nothing BTC is older than the genesis block.
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)
#: How far ahead of our clock a time may be and still be believed (``BTC_MAX_CLOCK_SKEW_S``):
#: exchanges' clocks and ours are never exactly in step.
DEFAULT_MAX_CLOCK_SKEW_S = 300.0

RELATIVE = re.compile(r"(\d+)\s*([mhdw])")
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}

TIME_HELP = (
    "ISO-8601 (2026-11-24T10:00Z, 2026-11-24T11:00+01:00; without an offset = UTC), "
    "'now', or an age: 90m, 2h, 3d, 1w (= now minus that); floored to the minute"
)


def utcnow() -> datetime:
    """The current time, aware UTC (the default clock of whatever takes one, injectable in tests)."""
    return datetime.now(UTC)


def to_utc(ts: datetime) -> datetime:
    """The same instant as a plain aware UTC datetime; a naive value is taken as UTC (MongoDB's dates)."""
    if ts.tzinfo is UTC and type(ts) is datetime:  # already one (the read model asks ~15 times a minute)
        return ts
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    u = ts.astimezone(UTC)  # a plain datetime even for pendulum's subclass (Airflow's context)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=UTC)


def floor_minute(ts: datetime) -> datetime:
    """Round an aware datetime down to the start of its UTC minute."""
    return to_utc(ts).replace(second=0, microsecond=0)


def format_ts(ts: datetime) -> str:
    """Format an aware datetime as UTC ISO-8601 with a ``Z`` suffix (millisecond precision at most).

    Raises:
        ValueError: ``ts`` is naive.
    """
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: timestamps must be timezone-aware UTC")
    ts = ts.astimezone(UTC)
    if ts.microsecond:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_left(left: float, gained: float, elapsed_s: float) -> float | None:
    """How long ``left`` units still take at the rate so far (``gained`` in ``elapsed_s`` seconds):
    the ETA of the CLI's progress and of the dashboard's history load.

    Returns:
        Seconds, or ``None`` while nothing has been gained yet.
    """
    return left * elapsed_s / gained if gained > 0 and elapsed_s > 0 else None


def parse_iso(text: str, what: str = "time") -> datetime:
    """Read an ISO-8601 instant: ``Z``, an offset, or none (= UTC).

    Args:
        text: The text.
        what: What the value is, for the error message (a parameter or field name).

    Returns:
        The instant as an aware UTC datetime.

    Raises:
        ValueError: ``text`` is not ISO-8601; the message names ``what``.
    """
    try:
        # year 1 or 9999 with an offset is a valid text but no UTC datetime: OverflowError
        return to_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, AttributeError, TypeError, OverflowError):
        raise ValueError(f"{what}={text!r} is not an ISO-8601 time such as 2026-11-24T10:00:00Z") from None


def parse_age(text: str) -> timedelta:
    """Read an age as people type it (``90m``, ``24h``, ``30d``, ``1w``); ``0`` or empty is none.

    Raises:
        ValueError: ``text`` is not such an age.
    """
    value = text.strip().lower()
    if value in ("", "0", "off"):
        return timedelta(0)
    relative = RELATIVE.fullmatch(value)
    if relative is None:
        raise ValueError(f"{text!r} is not an age such as 90m, 24h, 30d or 1w (0 or empty: none)")
    try:
        return UNITS[relative.group(2)] * int(relative.group(1))
    except OverflowError:  # beyond timedelta's 999,999,999 days
        raise ValueError(f"{text!r} is longer than any age a time can have") from None


def parse_time(text: str, *, now: datetime) -> datetime:
    """Read a time as people type it: ISO-8601, ``now``, or an age (``90m``, ``2h``, ``3d``, ``1w``).

    Args:
        text: The value as typed.
        now: The current time (aware); ages count back from it.

    Returns:
        The instant in UTC, floored to the minute.

    Raises:
        ValueError: ``text`` is none of those forms, or before 2009-01-03 (no BTC then).
    """
    value = text.strip()
    if value.lower() == "now":
        return floor_minute(now)
    if RELATIVE.fullmatch(value.lower()):
        try:
            ts = now - parse_age(value)
        except (OverflowError, ValueError):  # an age beyond any datetime (it matched the pattern)
            raise ValueError(f"{text!r} reaches back before BTC existed (2009-01-03)") from None
    else:
        try:
            ts = parse_iso(value)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a time: use ISO-8601 such as 2026-11-24T10:00:00Z (no offset = UTC), "
                "'now', or an age such as 90m, 2h, 3d"
            ) from None
    if ts < EARLIEST:
        raise ValueError(f"{text!r} is before 2009-01-03: BTC did not trade then")
    return floor_minute(ts)


class ImplausibleTimeError(BtcPipelineError, ValueError):
    """A time outside [2009-01-03, now + the allowed clock skew].

    ``reason`` is ``future_ts`` for a time ahead of the clock, ``bad_ts`` for one before BTC existed.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def check_plausible(
    ts: datetime, what: str, *, now: datetime, max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
) -> datetime:
    """The one rule for a believable observation time: between the genesis block (2009-01-03) and
    ``now`` plus ``max_skew_s`` (``BTC_MAX_CLOCK_SKEW_S``). Parsers, the producer and the drain all
    ask this function.

    Args:
        ts: The time (aware; a naive one is taken as UTC).
        what: What it is, for the message (a field name).
        now: The checker's own clock.
        max_skew_s: How far ahead of ``now`` a time may be.

    Returns:
        ``ts`` in UTC.

    Raises:
        ImplausibleTimeError: ``future_ts`` when ``ts`` is ahead of ``now + max_skew_s``, ``bad_ts``
            when it is before 2009-01-03.
    """
    try:
        utc = to_utc(ts)
    except (OverflowError, ValueError):  # year 1 or 9999 with an offset has no UTC form
        raise ImplausibleTimeError("bad_ts", f"{what}={ts.isoformat()} is not a representable UTC time") from None
    try:
        latest = to_utc(now) + timedelta(seconds=max_skew_s)
    except OverflowError:
        latest = datetime.max.replace(tzinfo=UTC)
    if utc < EARLIEST:
        raise ImplausibleTimeError("bad_ts", f"{what}={format_ts(utc)} is before 2009-01-03, when BTC began")
    if utc > latest:
        ahead = (utc - to_utc(now)).total_seconds()
        raise ImplausibleTimeError(
            "future_ts",
            f"{what}={format_ts(utc)} is {ahead:.0f} s ahead of this clock ({format_ts(to_utc(now))}); "
            f"at most {max_skew_s:g} s allowed (BTC_MAX_CLOCK_SKEW_S)",
        )
    return utc


def plausible_at(ts: datetime, now: datetime, max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S) -> bool:
    """Whether ``ts`` passes :func:`check_plausible` at ``now`` (for readers that skip, not refuse)."""
    try:
        check_plausible(ts, "ts", now=now, max_skew_s=max_skew_s)
    except ImplausibleTimeError:
        return False
    return True
