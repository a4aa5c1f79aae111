"""Injected faults: per-venue queues, consumed one request at a time, and their answers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
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
)
#: Faults a venue answers itself (with its own shapes); the others replace the answer.
SHAPED_BY_VENUE = ("empty", "tradeless")


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
    return 200, b"<html>502 Bad Gateway</html>", {}  # malformed
