"""Which failed writes blame the store (fail the run, commit nothing) and which blame a message
(isolate it, dead-letter it): the drain's only judgement between the two."""

from __future__ import annotations

import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DocumentTooLarge,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from btc_pipeline.store import write_failure
from btc_pipeline.store.buckets import BucketConflictError
from btc_pipeline.store.locks import LockTimeoutError


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (ServerSelectionTimeoutError("no server"), "outage"),
        (AutoReconnect("connection closed"), "outage"),
        (NetworkTimeout("timed out"), "outage"),
        (ConnectionRefusedError(111, "refused"), "outage"),
        (OperationFailure("auth failed", code=18), "outage"),
        (OperationFailure("not authorized", code=13), "outage"),
        (OperationFailure("shutting down", code=91), "outage"),
        (OperationFailure("not primary", code=10107), "outage"),
        (LockTimeoutError("held"), "outage"),
        (BucketConflictError("changed"), "outage"),
        (WriteError("invalid document", code=2), "store_refused"),
        (BulkWriteError({"writeErrors": [{"code": 2}]}), "store_refused"),
        (DocumentTooLarge("too big"), "store_refused"),
        (OperationFailure("bad value", code=2), "store_refused"),
        (OverflowError("date value out of range"), "internal_error"),
        (ValueError("year 10000 is out of range"), "internal_error"),
        (TypeError("unsupported operand"), "internal_error"),
        (RecursionError("maximum recursion depth exceeded"), "internal_error"),
    ],
)
def test_write_failures_are_told_apart(exc, verdict):
    assert write_failure(exc) == verdict
