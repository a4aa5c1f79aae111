"""What a failed run's record keeps: the failed task, its error, and the recovery heal that ran
before the failure (its holes were produced to the topic whatever failed after it)."""

from __future__ import annotations

from btc_pipeline.tasks.hooks import failed_run_fields

HEALED = {"start": "2026-12-06T07:10:00Z", "end": "2026-12-06T07:20:00Z", "missing_minutes": 10, "produced": 10}


def test_a_failed_ingest_run_keeps_what_its_produce_window_healed() -> None:
    fields = failed_run_fields("stream_ticks", "broker down", {"source": "coinbase", "healed": HEALED})
    assert fields == {"state": "failed", "failed_task": "stream_ticks", "error": "broker down", "healed": HEALED}


def test_a_run_that_healed_nothing_records_only_the_failure() -> None:
    assert "healed" not in failed_run_fields("record_run", "x", {"source": "coinbase"})
    assert "healed" not in failed_run_fields("produce_window", "x", None)
