"""Message schema v1: one JSON message per observation (a closed 1-minute candle or a tick).

The schema is the contract between the ingest side (producers) and the drain side (MongoDB);
see the README's "How it works". :func:`decode` is strict on purpose: anything it refuses goes to the dead-letter
topic with the :class:`SchemaError` reason, never into ``btc.prices``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from btc_pipeline.timeutil import format_ts, parse_iso

__all__ = ["KINDS", "Kind", "Observation", "SchemaError", "decode", "format_ts", "parse_ts"]

SCHEMA_VERSION = 1
KINDS = ("candle_1m", "tick")
MAX_MESSAGE_BYTES = 64 * 1024

Kind = Literal["candle_1m", "tick"]


class SchemaError(ValueError):
    """A message does not follow schema v1. ``reason`` is a short machine-friendly code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_ts(value: object, field: str) -> datetime:
    """Parse a schema timestamp: a string in UTC ISO-8601 ending in ``Z``.

    Raises:
        SchemaError: The value is not such a string.
    """
    if not isinstance(value, str):
        raise SchemaError("bad_ts", f"{field} must be an ISO-8601 string, got {type(value).__name__}")
    if not value.endswith("Z"):
        raise SchemaError("bad_ts", f"{field}={value!r} is not UTC ISO-8601 ending in 'Z'")
    try:
        parsed = parse_iso(value, field)
    except ValueError:
        raise SchemaError("bad_ts", f"{field}={value!r} is not ISO-8601") from None
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

    def encode(self) -> tuple[bytes, bytes]:
        """Encode as a Kafka ``(key, value)`` pair, after validating (a producer never sends bad data)."""
        value = json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()
        decode(value)  # validate against the same rules the drain applies
        return self.key.encode(), value


def _number(body: dict[str, Any], field: str, *, positive: bool, nullable: bool = False) -> float | None:
    value = body.get(field)
    if value is None:
        if nullable:
            return None
        raise SchemaError("missing_field", f"{field} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError("wrong_type", f"{field} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise SchemaError("bad_price", f"{field}={value!r} is not finite")
    if positive and number <= 0:
        raise SchemaError("bad_price", f"{field}={value!r} must be > 0")
    if not positive and number < 0:
        raise SchemaError("bad_volume", f"{field}={value!r} must be >= 0")
    return number


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if value is None:
        raise SchemaError("missing_field", f"{field} is required")
    if not isinstance(value, str) or not value.strip():
        raise SchemaError("wrong_type", f"{field} must be a non-empty string")
    if "|" in value and field in ("source", "symbol"):
        raise SchemaError("wrong_type", f"{field}={value!r} must not contain '|', the key separator")
    return value


def decode(value: bytes | None) -> Observation:
    """Decode and validate one message value.

    Args:
        value: The raw Kafka message value.

    Returns:
        The observation.

    Raises:
        SchemaError: With a reason code (``empty``, ``too_large``, ``not_json``, ``not_object``,
            ``bad_version``, ``missing_field``, ``wrong_type``, ``bad_kind``, ``bad_ts``,
            ``bad_price``, ``bad_volume``, ``inconsistent_ohlc``) and a detail.
    """
    if not value:
        raise SchemaError("empty", "message value is empty")
    if len(value) > MAX_MESSAGE_BYTES:
        raise SchemaError("too_large", f"message value is {len(value)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        body = json.loads(value.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError("not_json", f"value is not UTF-8 JSON ({exc})") from None
    except ValueError as exc:  # NaN / Infinity literals
        raise SchemaError("bad_price", str(exc)) from None
    if not isinstance(body, dict):
        raise SchemaError("not_object", f"value is a JSON {type(body).__name__}, expected an object")
    if body.get("v") != SCHEMA_VERSION:
        raise SchemaError("bad_version", f"v={body.get('v')!r}, this drain understands v={SCHEMA_VERSION}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise SchemaError("bad_kind", f"kind={kind!r}, expected one of {KINDS}")
    source = _text(body, "source")
    symbol = _text(body, "symbol")
    run_id = _text(body, "run_id")
    ts = parse_ts(body.get("ts"), "ts")
    fetched_at = parse_ts(body.get("fetched_at"), "fetched_at")
    price = _number(body, "price", positive=True)
    volume = _number(body, "volume", positive=False, nullable=True)
    ohlc: dict[str, float | None] = {}
    if kind == "candle_1m":
        for name in ("open", "high", "low", "close"):
            ohlc[name] = _number(body, name, positive=True)
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
