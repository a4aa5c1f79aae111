from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from btc_pipeline.schema import Observation, SchemaError, decode, format_ts

TS = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def candle(**overrides) -> dict:
    body = {
        "v": 1,
        "source": "coinbase",
        "symbol": "BTC-USD",
        "kind": "candle_1m",
        "ts": "2026-11-24T10:00:00Z",
        "price": 101.0,
        "open": 100.0,
        "high": 102.0,
        "low": 99.0,
        "close": 101.0,
        "volume": 1.5,
        "fetched_at": "2026-11-24T10:01:02.345Z",
        "run_id": "scheduled__2026-11-24T10:01:00+00:00",
    }
    body.update(overrides)
    return body


def test_round_trip_keeps_every_field_and_the_key():
    obs = Observation(
        source="coinbase",
        symbol="BTC-USD",
        kind="candle_1m",
        ts=TS,
        price=101.0,
        open=100.0,
        high=102.0,
        low=99.0,
        close=101.0,
        volume=1.5,
        fetched_at=TS,
        run_id="r1",
    )
    key, value = obs.encode()
    assert key == b"coinbase|BTC-USD|candle_1m|2026-11-24T10:00:00Z"
    assert decode(value) == obs
    assert json.loads(value)["v"] == 1


def test_tick_has_no_ohlc():
    obs = Observation(
        source="kraken",
        symbol="BTC-USD",
        kind="tick",
        ts=TS.replace(microsecond=123456),
        price=5.0,
        fetched_at=TS,
        run_id="r",
    )
    body = json.loads(obs.encode()[1])
    assert "open" not in body
    assert body["ts"] == "2026-11-24T10:00:00.123Z"


def test_format_ts_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"not json{", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_object"),
        (json.dumps(candle(v=2)).encode(), "bad_version"),
        (json.dumps({k: v for k, v in candle().items() if k != "source"}).encode(), "missing_field"),
        (json.dumps(candle(price="101")).encode(), "wrong_type"),
        (json.dumps(candle(price=True)).encode(), "wrong_type"),
        (b'{"v":1,"price":NaN}', "bad_price"),
        (json.dumps(candle(price=-1.0, close=-1.0)).encode(), "bad_price"),
        (json.dumps(candle(low=0)).encode(), "bad_price"),
        (json.dumps(candle(ts="2026-11-24T10:00:00+02:00")).encode(), "bad_ts"),
        (json.dumps(candle(ts="yesterday")).encode(), "bad_ts"),
        (json.dumps(candle(kind="trade")).encode(), "bad_kind"),
        (json.dumps(candle(high=100.5)).encode(), "inconsistent_ohlc"),
        (json.dumps(candle(price=100.0)).encode(), "inconsistent_ohlc"),
        (json.dumps(candle(volume=-3)).encode(), "bad_volume"),
        (json.dumps(candle(source="a|b")).encode(), "wrong_type"),
        (b"{" + b" " * (1024 * 1024) + b"}", "too_large"),
    ],
)
def test_decode_rejects_with_a_specific_reason(value, reason):
    with pytest.raises(SchemaError) as info:
        decode(value)
    assert info.value.reason == reason


def test_decode_accepts_a_valid_candle():
    obs = decode(json.dumps(candle()).encode())
    assert obs.ts == TS
    assert obs.key == "coinbase|BTC-USD|candle_1m|2026-11-24T10:00:00Z"
