"""A misbehaving exchange on the real broker and database: while one exchange answers with an
error body and HTTP 200, deep nesting, times from 2096 or 2001, 400-digit numbers or a slow drip,
the ingest fails over to the next exchange, every good observation is stored, and each bad reply is
named in the run's ``failed_exchanges`` (``btc.pipeline_runs``) and in the task log."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from btc_pipeline.steps.ingest import ingest_window
from btc_pipeline.store import Store

from .conftest import new_producer, run_drain
from .test_ingest_failover import ALL, at_sim, clients, live_window

pytestmark = pytest.mark.integration

# (exchange that misbehaves, fault kind, what its failure says)
CASES = [
    ("coinbase", "error_200", "error body: Internal server error"),
    ("kraken", "error_200", "Kraken error ['EService:Unavailable']"),
    ("binance", "error_200", "Binance error -1001"),
    ("bitstamp", "error_200", "Bitstamp error: Invalid request"),
    ("kraken", "deep_nesting", "body is not JSON"),
    ("binance", "future_ts", "future_ts: openTime=2096-01-01"),
    ("bitstamp", "ancient_ts", "bad_ts: timestamp=2001-09-09"),
    ("coinbase", "huge_number", "is not a finite number"),
    ("binance", "drip", "body not complete at the 2s deadline"),
]


@pytest.mark.parametrize(("bad", "kind", "says"), CASES, ids=[f"{b}-{k}" for b, k, _ in CASES])
def test_a_misbehaving_exchange_fails_over_and_good_data_is_stored(
    core_stack: Any, scratch: Any, mongo: Any, sim: str, faults: Any, caplog: Any, bad: str, kind: str, says: str
) -> None:
    others = tuple(name for name in ALL if name != bad)
    s = at_sim(scratch, sim, http_retries=1, http_deadline_s=2.0).model_copy(update={"exchanges": (bad, *others)})
    faults(exchange=bad, kind=kind, times=50, delay_s=0.5)  # every request of this run, candles and ticker
    run_id = f"hostile-{bad}-{kind}"
    started_at = datetime.now(UTC)
    with caplog.at_level(logging.WARNING, logger="btc_pipeline"):
        result = ingest_window(live_window(), s, clients(s), new_producer(core_stack), run_id)

    assert result.source == others[0] and result.candles == 4  # failed over to the next exchange
    assert set(result.failed_exchanges) == {bad, f"{bad}:ticker"}
    assert says in result.failed_exchanges[bad] and result.failed_exchanges[bad].startswith(bad)
    assert tuple(result.tick_prices) == others
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"exchange {bad} failed" in logged and says in logged  # the task log names it

    db = mongo[s.mongo_db]
    stats = run_drain(core_stack, s, db, run_id=f"drain-{run_id}")
    assert stats.consumed == result.produced == 7 and stats.rejected == 0
    stored = Counter((d["kind"], d["source"]) for d in db["prices"].find())
    assert stored == {("candle_1m", others[0]): 4, **{("tick", name): 1 for name in others}}

    Store(db).record_run(
        "btc_ingest", run_id, started_at=started_at, finished_at=datetime.now(UTC), fields=result.to_dict()
    )
    run = db["pipeline_runs"].find_one({"_id": f"btc_ingest|{run_id}"})
    assert run is not None and says in run["failed_exchanges"][bad]
