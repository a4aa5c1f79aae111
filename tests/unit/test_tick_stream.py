"""The tick stream of a live ingest run, against the simulated exchange over HTTP with a simulated
clock: rounds at the configured cadence through the minute after the window, rounds already past
skipped, nothing for an old window, a failed ticker or an unacknowledged round counted, and the
latter reported at the end (the readings are gone; the run must say so)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from btc_pipeline.config import Settings, load_settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.ticks import TicksNotDeliveredError, stream_ticks, tick_times
from btc_pipeline.stream import DeliveryError, Record, produce_all
from btc_pipeline.window import MINUTE, Window, floor_minute

EXCHANGES = ("coinbase", "kraken", "binance", "bitstamp")


class RecordingProducer:
    """The part of confluent-kafka's ``Producer`` that ``produce_all`` uses; acknowledges every
    message, or none while ``down`` (as a broker that does not answer)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.down = False
        self._pending: list[Callable[..., None]] = []

    def produce(self, topic: str, *, key: bytes, value: bytes, headers: list[Any], on_delivery: Any) -> None:
        self.sent.append({"topic": topic, "key": key.decode(), **json.loads(value)})
        self._pending.append(on_delivery)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        if self.down:
            return len(self._pending)
        for callback in self._pending:
            callback(None, None)
        self._pending.clear()
        return 0


class Clock:
    """Simulated time: ``sleep`` moves it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def settings_for(sim: str, **env: str) -> Settings:
    return load_settings(
        {
            "BTC_EXCHANGES": ",".join(EXCHANGES),
            "BTC_COINBASE_URL": f"{sim}/coinbase",
            "BTC_KRAKEN_URL": f"{sim}/kraken/0",
            "BTC_BINANCE_URL": f"{sim}/binance",
            "BTC_BITSTAMP_URL": f"{sim}/bitstamp/api/v2",
            "BTC_HTTP_TIMEOUT_S": "0.5",
            "BTC_HTTP_RETRIES": "0",
            **env,
        }
    )


def live_window() -> Window:
    end = floor_minute(datetime.now(UTC))
    return Window(end - MINUTE, end)


def test_tick_times_cover_the_minute_after_the_window() -> None:
    window = live_window()
    assert [int((t - window.end).total_seconds()) for t in tick_times(window, 10)] == [10, 20, 30, 40, 50]
    assert [int((t - window.end).total_seconds()) for t in tick_times(window, 7)] == [7, 14, 21, 28, 35, 42, 49, 56]
    assert tick_times(window, 60) == []


def test_every_exchange_is_read_every_interval_and_produced_at_once(sim: str) -> None:
    settings = settings_for(sim)
    window = live_window()
    clock = Clock(window.end + timedelta(seconds=3))  # the task started 3 s after the window closed
    producer = RecordingProducer()
    exchanges = [build_exchange(name, settings) for name in EXCHANGES]
    result = stream_ticks(window, settings, exchanges, producer, "run-1", clock=clock, sleep=clock.sleep)
    assert result.rounds == 5 and result.produced == 20 and result.undelivered_rounds == 0
    assert clock.sleeps == [7, 10, 10, 10, 10]  # to +10 s, then the cadence
    assert {m["source"] for m in producer.sent} == set(EXCHANGES)
    assert {m["kind"] for m in producer.sent} == {"tick"} and {m["topic"] for m in producer.sent} == {settings.topic}
    fetched = sorted({m["fetched_at"] for m in producer.sent})
    assert [(datetime.fromisoformat(t) - window.end).total_seconds() for t in fetched] == [10, 20, 30, 40, 50]
    for message in producer.sent:  # keyed like every tick: source|symbol|tick|exchange's trade time
        assert message["key"] == f"{message['source']}|BTC-USD|tick|{message['ts']}"


def test_a_late_start_skips_the_rounds_already_past(sim: str) -> None:
    settings = settings_for(sim, BTC_TICK_INTERVAL_S="15")
    window = live_window()
    clock = Clock(window.end + timedelta(seconds=33))
    result = stream_ticks(
        window, settings, [build_exchange("kraken", settings)], RecordingProducer(), "r", clock=clock, sleep=clock.sleep
    )
    assert result.rounds == 1 and clock.sleeps == [12]  # only +45 s is still ahead


def test_an_old_window_streams_nothing(sim: str) -> None:
    settings = settings_for(sim)
    window = live_window()
    clock = Clock(window.end + timedelta(seconds=settings.live_tick_horizon_s + 1))
    producer = RecordingProducer()
    result = stream_ticks(window, settings, [build_exchange("coinbase", settings)], producer, "r", clock=clock)
    assert result.rounds == 0 and result.skipped == "not a live window" and producer.sent == []


def test_a_failing_ticker_is_counted_and_the_others_flow(sim: str, faults: Callable[..., None]) -> None:
    settings = settings_for(sim)
    window = live_window()
    faults(exchange="binance", kind="500", times=2)  # two rounds (no HTTP retries here)
    clock = Clock(window.end + timedelta(seconds=1))
    producer = RecordingProducer()
    exchanges = [build_exchange(name, settings) for name in EXCHANGES]
    result = stream_ticks(window, settings, exchanges, producer, "r", clock=clock, sleep=clock.sleep)
    assert result.failed == {"binance:ticker": 2}
    assert result.produced == 18 and result.rounds == 5


def test_rounds_the_broker_did_not_acknowledge_fail_the_stream_at_its_end(sim: str) -> None:
    settings = settings_for(sim)
    window = live_window()
    clock = Clock(window.end + timedelta(seconds=1))
    producer = RecordingProducer()
    producer.down = True
    with pytest.raises(TicksNotDeliveredError, match="5 of 5 tick round"):
        stream_ticks(
            window, settings, [build_exchange("coinbase", settings)], producer, "r", clock=clock, sleep=clock.sleep
        )
    assert len(producer.sent) == 5  # every round was still read and sent


class FixedTicker:
    """An exchange whose ticker says what it is told (the parsers' own checks are tested elsewhere)."""

    limits = None

    def __init__(self, name: str, tick: Any) -> None:
        self.name, self.tick = name, tick

    def fetch_candles(self, window: Window) -> list[Any]:
        return []

    def fetch_ticker(self) -> Any:
        return self.tick


def test_a_reading_the_drain_would_refuse_is_listed_as_failed_and_the_round_goes_on():
    from btc_pipeline.exchanges import Tick
    from btc_pipeline.steps.ticks import read_tickers

    now = datetime(2026, 12, 6, 12, 0, 5, tzinfo=UTC)
    exchanges = [
        FixedTicker("coinbase", Tick(ts=now, price=97_000.0, volume=0.5)),
        FixedTicker("kraken", Tick(ts=now, price=97_010.0, volume=-1.0)),
        FixedTicker("bitstamp", Tick(ts=datetime(2096, 1, 1, tzinfo=UTC), price=97_020.0)),
        FixedTicker("binance", Tick(ts=now, price=97_005.0)),
    ]
    reading = read_tickers(exchanges, load_settings({}), "r", clock=lambda: now)
    assert reading.prices == {"coinbase": 97_000.0, "binance": 97_005.0}
    assert [json.loads(record.value)["source"] for record in reading.records] == ["coinbase", "binance"]
    assert "bad_volume" in reading.failed["kraken:ticker"]
    assert "future_ts" in reading.failed["bitstamp:ticker"]


def test_an_unacknowledged_round_counts_only_its_own_messages() -> None:
    """The producer still holds earlier rounds' messages: the error counts this round's alone."""
    producer = RecordingProducer()
    producer.down = True
    earlier = [Record(b"k", b'{"n": 1}')] * 8
    with pytest.raises(DeliveryError, match=r"^8 of 8 message\(s\)"):
        produce_all(producer, "t", earlier, timeout_s=0.01)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError, match=r"^4 of 4 message\(s\) to t still unacknowledged .* \(and 8 of earlier"):
        produce_all(producer, "t", earlier[:4], timeout_s=0.01)  # type: ignore[arg-type]
