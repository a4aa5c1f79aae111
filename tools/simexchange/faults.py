"""Injected faults: per-venue queues, consumed one request at a time, and their answers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simexchange.market import Reply

FAULT_KINDS = (
    "429",
    "418",
    "451",
    "500",
    "503",
    "timeout",
    "malformed",
    "empty",
    "tradeless",
    "kraken_error",
    "error_200",
    "deep_nesting",
    "future_ts",
    "ancient_ts",
    "huge_number",
    "drip",
)
#: Faults a venue answers itself (with its own shapes).
SHAPED_BY_VENUE = ("empty", "tradeless")
#: Faults that alter the venue's own answer (see :func:`altered`); the remaining kinds replace it.
ALTER_ANSWER = ("future_ts", "ancient_ts", "huge_number", "drip")
#: Each venue's error body, as the real exchange sends it (see API_NOTES.md), for ``error_200``.
ERROR_BODIES: dict[str, Any] = {
    "coinbase": {"message": "Internal server error (injected)"},
    "kraken": {"error": ["EService:Unavailable"], "result": {}},
    "binance": {"code": -1001, "msg": "Internal error; unable to process your request. Please try again. (injected)"},
    "bitstamp": {
        "status": "error",
        "reason": "Invalid request (injected)",
        "errors": [{"field": "limit", "message": "Must be between 1 and 1000"}],
    },
}
#: The times ``future_ts`` and ``ancient_ts`` put in an answer: 2096-01-01, and 2001-09-09 (before BTC).
FUTURE_S, ANCIENT_S = 3_976_214_400, 1_000_000_000
#: What ``huge_number`` puts in place of every number that is not a time.
HUGE = 10**400


@dataclass
class Fault:
    kind: str
    times: int
    retry_after: float = 1.0
    delay_s: float = 30.0
    #: Only requests whose path contains this take the fault (``None``: any request of the venue),
    #: e.g. ``"candles"`` so that a live run's ticker reads leave a Coinbase candle fault alone.
    path: str | None = None


class FaultBook:
    """Per-exchange queues of faults, consumed one request at a time. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}

    def add(self, exchange: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(exchange, []).append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, exchange: str, path: str = "") -> Fault | None:
        """The first fault queued for ``exchange`` that applies to a request of ``path``, used once."""
        with self._lock:
            queue = self._faults.get(exchange, [])
            for index, fault in enumerate(queue):
                if fault.path is not None and fault.path not in path:
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(index)
                return fault
            return None

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {ex: [vars(f).copy() for f in q] for ex, q in self._faults.items() if q}


def fault_reply(exchange: str, fault: Fault) -> Reply:
    """The answer of an injected fault (``empty``/``tradeless`` are handled by the exchanges)."""
    if fault.kind in ("429", "418"):
        if exchange == "binance":
            body: Any = {
                "code": -1003,
                "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            }
        else:
            body = {"message": "Too Many Requests"}
        return int(fault.kind), body, {"Retry-After": f"{fault.retry_after:g}"}
    if fault.kind == "451":
        return 451, {"code": 0, "msg": "Service unavailable from a restricted location (injected)."}, {}
    if fault.kind in ("500", "503"):
        return int(fault.kind), {"message": "Internal Server Error (injected)"}, {}
    if fault.kind == "timeout":
        time.sleep(fault.delay_s)
        return 504, {"message": "Gateway Timeout (injected, after delay)"}, {}
    if fault.kind == "kraken_error":
        return 200, {"error": ["EService:Unavailable"], "result": {}}, {}
    if fault.kind == "error_200":
        return 200, ERROR_BODIES[exchange], {}
    if fault.kind == "deep_nesting":
        return 200, b"[" * 100_000 + b"]" * 100_000, {}
    return 200, b"<html>502 Bad Gateway</html>", {}  # malformed


def altered(kind: str, body: Any) -> Any:
    """The venue's answer ``body`` as fault ``kind`` makes it: every time in it (epoch seconds or
    milliseconds, as numbers or strings, or ISO-8601) moved to 2096 (``future_ts``) or 2001
    (``ancient_ts``), or every other number made 400 digits long (``huge_number``); ``drip``
    leaves the body as it is (the server sends it slowly)."""
    if isinstance(body, dict):
        return {key: altered(kind, value) for key, value in body.items()}
    if isinstance(body, list):
        return [altered(kind, value) for value in body]
    if isinstance(body, bool) or not isinstance(body, (int, float, str)) or kind == "drip":
        return body
    try:
        number = float(body)
    except ValueError:
        number = None
    if isinstance(body, str) and number is None:
        if "T" not in body or not body[:4].isdigit() or kind == "huge_number":
            return body
        target = FUTURE_S if kind == "future_ts" else ANCIENT_S
        return datetime.fromtimestamp(target, UTC).isoformat().replace("+00:00", "Z")  # an ISO time
    unit = 1 if 1e9 <= (number or 0) < 1e10 else 1000 if 1e12 <= (number or 0) < 1e13 else None
    if kind == "huge_number":
        new: int | None = HUGE if unit is None else None
    else:
        new = None if unit is None else (FUTURE_S if kind == "future_ts" else ANCIENT_S) * unit
    if new is None:
        return body
    return str(new) if isinstance(body, str) else new
