from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
        # hostile input that escaped decode (OverflowError, RecursionError) or passed it
        (json.dumps(candle(price=10**400, close=10**400, high=10**400)).encode(), "bad_price"),
        (json.dumps(candle(volume=10**400)).encode(), "bad_volume"),
        (json.dumps(candle(volume=10**4000)).encode(), "bad_volume"),
        (json.dumps(candle(price=1e300, close=1e300, high=1e300)).encode(), "bad_price"),
        (json.dumps(candle(volume=1e300)).encode(), "bad_volume"),
        (b'{"v":1,"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}", "not_json"),
        (json.dumps(candle(ts="9999-12-31T23:59:00Z")).encode(), "future_ts"),
        (json.dumps(candle(ts="2096-01-01T00:00:00Z")).encode(), "future_ts"),
        (json.dumps(candle(fetched_at="9999-12-31T23:59:59.999Z")).encode(), "future_ts"),
        (json.dumps(candle(ts="1970-01-01T00:00:00Z")).encode(), "bad_ts"),
        (json.dumps(candle(ts="0001-01-01T00:00:00Z")).encode(), "bad_ts"),
        (json.dumps(candle(ts="2026-11-24T10:00:30Z")).encode(), "bad_ts"),
        (json.dumps(candle(ts="2026-11-24T10:00:00.001Z")).encode(), "bad_ts"),
        (json.dumps(candle(v=True)).encode(), "bad_version"),
        (json.dumps(candle(v=1.0)).encode(), "bad_version"),
        (json.dumps(candle(source="Coin base")).encode(), "wrong_type"),
        (json.dumps(candle(source="x" * 40)).encode(), "wrong_type"),
        (json.dumps(candle(symbol="btc usd")).encode(), "wrong_type"),
        (json.dumps(candle(run_id="r" * 300)).encode(), "wrong_type"),
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


NOW = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)


def test_a_tick_from_the_future_is_refused_against_the_decoders_clock():
    tick = candle(kind="tick", ts="2026-11-24T10:10:01Z")
    with pytest.raises(SchemaError) as info:
        decode(json.dumps(tick).encode(), now=NOW)
    assert info.value.reason == "future_ts"
    assert decode(json.dumps(tick).encode(), now=NOW, max_skew_s=400).ts == datetime(
        2026, 11, 24, 10, 10, 1, tzinfo=UTC
    )


def test_a_tick_keeps_its_sub_minute_time():
    assert decode(json.dumps(candle(kind="tick", ts="2026-11-24T10:00:30.5Z")).encode(), now=NOW).ts.second == 30


def test_encode_refuses_what_decode_would_refuse():
    obs = decode(json.dumps(candle(kind="tick")).encode())
    with pytest.raises(SchemaError) as info:
        replace(obs, volume=-1.0).encode()
    assert info.value.reason == "bad_volume"
    with pytest.raises(SchemaError) as info:
        replace(obs, ts=datetime(2096, 1, 1, tzinfo=UTC)).encode()
    assert info.value.reason == "future_ts"
    with pytest.raises(SchemaError) as info:
        replace(obs, price=float("nan")).encode()
    assert info.value.reason == "bad_price"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={k: st.one_of(st.just(v), JSON) for k, v in candle().items()},
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_an_observation_or_a_schema_error(value):
    try:
        decode(value, now=NOW)
    except SchemaError as exc:
        assert exc.reason and exc.detail


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON, FIELDS, FIELDS.map(lambda body: {**candle(kind="tick"), **body})))
def test_any_json_value_decodes_to_an_observation_or_a_schema_error(body):
    try:
        obs = decode(json.dumps(body).encode(), now=NOW)
    except SchemaError as exc:
        assert exc.reason and exc.detail
    else:  # what passes can be stored: keyed, plausible, bounded
        assert obs.ts <= NOW + timedelta(seconds=300) and obs.price <= 1e9
        assert decode(obs.encode()[1], now=NOW) == obs


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=60_000))
def test_any_nesting_depth_is_a_value_or_a_schema_error(depth):
    value = b'{"v":1,"source":' + b"[" * depth + b"]" * depth + b"}"
    try:
        decode(value, now=NOW)
    except SchemaError as exc:
        assert exc.reason in ("not_json", "too_large", "wrong_type", "bad_kind")
