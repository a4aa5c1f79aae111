"""Message schema v1: one JSON message per observation (a closed 1-minute candle or a tick).

The schema is the contract between the ingest side (producers) and the drain side (MongoDB);
see the README's "How it works". :func:`decode` is strict on purpose: anything it refuses goes to the dead-letter
topic with the :class:`SchemaError` reason, never into ``btc.prices``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.timeutil import (
    DEFAULT_MAX_CLOCK_SKEW_S,
    ImplausibleTimeError,
    check_plausible,
    format_ts,
    parse_iso,
)

__all__ = ["KINDS", "Kind", "Observation", "SchemaError", "decode", "format_ts", "parse_ts"]

SCHEMA_VERSION = 1
KINDS = ("candle_1m", "tick")
MAX_OBSERVATION_BYTES = 64 * 1024
#: What a ``source`` may be: an exchange's name, which also names the read model's collections.
SOURCE_PATTERN = r"[a-z0-9][a-z0-9_]{0,31}"
#: A trading pair such as ``BTC-USD``.
SYMBOL_PATTERN = r"[A-Z0-9]{2,12}-[A-Z0-9]{2,12}"
#: No BTC price is a billion dollars, and no volume exceeds the 21 million BTC there will ever be:
#: beyond these a number is an error, and sums of such numbers could overflow a float.
MAX_PRICE = 1e9
MAX_VOLUME = 21e6

Kind = Literal["candle_1m", "tick"]


class SchemaError(BtcPipelineError, ValueError):
    """A message does not follow schema v1. ``reason`` is a short machine-friendly code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_ts(
    value: object, field: str, *, now: datetime | None = None, max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
) -> datetime:
    """Parse a schema timestamp: a string in UTC ISO-8601 ending in ``Z``, at a plausible time
    (:func:`~btc_pipeline.timeutil.check_plausible` against ``now``, the current time if omitted).

    Raises:
        SchemaError: The value is not such a string (``bad_ts``), or lies ahead of ``now`` by more
            than ``max_skew_s`` (``future_ts``) or before 2009-01-03 (``bad_ts``).
    """
    if not isinstance(value, str):
        raise SchemaError("bad_ts", f"{field} must be an ISO-8601 string, got {type(value).__name__}")
    if not value.endswith("Z"):
        raise SchemaError("bad_ts", f"{field}={value!r} is not UTC ISO-8601 ending in 'Z'")
    try:
        parsed = parse_iso(value, field)
    except ValueError:
        raise SchemaError("bad_ts", f"{field}={value[:64]!r} is not ISO-8601") from None
    try:
        check_plausible(parsed, field, now=now or datetime.now(UTC), max_skew_s=max_skew_s)
    except ImplausibleTimeError as exc:
        raise SchemaError(exc.reason, exc.detail) from None
    # Mongo stores milliseconds; truncate so that the key and the stored date agree.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Observation:
    """One price observation, as carried by one Kafka message and stored as one document."""

    source: str
    symbol: str
    kind: Kind
    ts: datetime
    price: float
    fetched_at: datetime
    run_id: str
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    volume: float | None = None

    @property
    def key(self) -> str:
        """The natural key ``source|symbol|kind|ts``: the Kafka message key and the MongoDB ``_id``."""
        return f"{self.source}|{self.symbol}|{self.kind}|{format_ts(self.ts)}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of schema v1."""
        body: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "source": self.source,
            "symbol": self.symbol,
            "kind": self.kind,
            "ts": format_ts(self.ts),
            "price": self.price,
        }
        if self.kind == "candle_1m":
            body.update(open=self.open, high=self.high, low=self.low, close=self.close)
        body.update(volume=self.volume, fetched_at=format_ts(self.fetched_at), run_id=self.run_id)
        return body

    def encode(
        self, *, now: datetime | None = None, max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    ) -> tuple[bytes, bytes]:
        """Encode as a Kafka ``(key, value)`` pair, after validating (a producer never sends bad data).

        Args:
            now: The producer's clock, for the plausible-time rule (the current time if omitted).
            max_skew_s: How far ahead of ``now`` a time may be (``BTC_MAX_CLOCK_SKEW_S``).

        Raises:
            SchemaError: The observation breaks a rule of :func:`decode` (the drain's rules).
        """
        try:
            value = json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()
        except (ValueError, TypeError) as exc:  # a NaN, or a field of the wrong type
            raise SchemaError("bad_price", f"{self.key}: {exc}") from None
        decode(value, now=now, max_skew_s=max_skew_s)  # validate against the same rules the drain applies
        return self.key.encode(), value


def _number(body: dict[str, Any], field: str, *, price: bool, nullable: bool = False) -> float | None:
    """A price (``0 < x <= MAX_PRICE``) or a volume (``0 <= x <= MAX_VOLUME``)."""
    value = body.get(field)
    if value is None:
        if nullable:
            return None
        raise SchemaError("missing_field", f"{field} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError("wrong_type", f"{field} must be a number, got {type(value).__name__}")
    reason, limit = ("bad_price", MAX_PRICE) if price else ("bad_volume", MAX_VOLUME)
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise SchemaError(reason, f"{field} is a {len(str(value))}-digit number, limit {limit:g}") from None
    if not math.isfinite(number):
        raise SchemaError(reason, f"{field}={value!r} is not finite")
    if price and not 0 < number <= limit:
        raise SchemaError(reason, f"{field}={number!r} must be > 0 and <= {limit:g}")
    if not price and not 0 <= number <= limit:
        raise SchemaError(reason, f"{field}={number!r} must be >= 0 and <= {limit:g}")
    return number


def _text(body: dict[str, Any], field: str, pattern: str | None = None) -> str:
    value = body.get(field)
    if value is None:
        raise SchemaError("missing_field", f"{field} is required")
    if not isinstance(value, str) or not value.strip():
        raise SchemaError("wrong_type", f"{field} must be a non-empty string")
    if len(value) > 256:
        raise SchemaError("wrong_type", f"{field} is {len(value)} characters long, limit 256")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise SchemaError("wrong_type", f"{field}={value[:64]!r} does not match {pattern}")
    return value


def decode(
    value: bytes | None, *, now: datetime | None = None, max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
) -> Observation:
    """Decode and validate one message value. Any bytes give an observation or a
    :class:`SchemaError`, never another exception.

    Args:
        value: The raw Kafka message value.
        now: The decoder's clock, for the plausible-time rule (the current time if omitted).
        max_skew_s: How far ahead of ``now`` a time may be (``BTC_MAX_CLOCK_SKEW_S``).

    Returns:
        The observation.

    Raises:
        SchemaError: With a reason code (``empty``, ``too_large``, ``not_json``, ``not_object``,
            ``bad_version``, ``missing_field``, ``wrong_type``, ``bad_kind``, ``bad_ts``,
            ``future_ts``, ``bad_price``, ``bad_volume``, ``inconsistent_ohlc``) and a detail.
    """
    if not value:
        raise SchemaError("empty", "message value is empty")
    if len(value) > MAX_OBSERVATION_BYTES:
        raise SchemaError("too_large", f"message value is {len(value)} bytes, limit {MAX_OBSERVATION_BYTES}")
    try:
        body = json.loads(value.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError("not_json", f"value is not UTF-8 JSON ({exc})") from None
    except RecursionError:
        raise SchemaError("not_json", "value is JSON nested too deeply to read") from None
    except ValueError as exc:  # NaN / Infinity literals, integers of over 4,300 digits
        raise SchemaError("bad_price", str(exc)[:200]) from None
    if not isinstance(body, dict):
        raise SchemaError("not_object", f"value is a JSON {type(body).__name__}, expected an object")
    version = body.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # `true == 1` in Python
        raise SchemaError("bad_version", f"v={str(version)[:32]}, this drain understands v={SCHEMA_VERSION}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise SchemaError("bad_kind", f"kind={str(kind)[:32]!r}, expected one of {KINDS}")
    source = _text(body, "source", SOURCE_PATTERN)
    symbol = _text(body, "symbol", SYMBOL_PATTERN)
    run_id = _text(body, "run_id")
    now = now or datetime.now(UTC)
    ts = parse_ts(body.get("ts"), "ts", now=now, max_skew_s=max_skew_s)
    if kind == "candle_1m" and (ts.second or ts.microsecond):
        raise SchemaError("bad_ts", f"ts={format_ts(ts)} of a candle_1m is not on a whole minute")
    fetched_at = parse_ts(body.get("fetched_at"), "fetched_at", now=now, max_skew_s=max_skew_s)
    price = _number(body, "price", price=True)
    volume = _number(body, "volume", price=False, nullable=True)
    ohlc: dict[str, float | None] = {}
    if kind == "candle_1m":
        for name in ("open", "high", "low", "close"):
            ohlc[name] = _number(body, name, price=True)
        o, h, lo, c = (ohlc["open"], ohlc["high"], ohlc["low"], ohlc["close"])
        assert o is not None and h is not None and lo is not None and c is not None
        if not lo <= min(o, c) <= max(o, c) <= h:
            raise SchemaError("inconsistent_ohlc", f"expected low <= open,close <= high, got o={o} h={h} l={lo} c={c}")
        if price != c:
            raise SchemaError("inconsistent_ohlc", f"price={price} must equal close={c} for candles")
    assert price is not None
    return Observation(
        source=source,
        symbol=symbol,
        kind=kind,
        ts=ts,
        price=price,
        fetched_at=fetched_at,
        run_id=run_id,
        volume=volume,
        **ohlc,
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")
