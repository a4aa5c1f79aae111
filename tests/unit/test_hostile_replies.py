"""Hostile exchange replies: whatever a body holds, a parser returns a value or raises ExchangeError,
so failover always goes on to the next exchange. The examples are the inputs that escaped before."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import binance, bitstamp, build_exchange, coinbase, kraken
from btc_pipeline.exchanges.base import ExchangeError, TimeRule
from btc_pipeline.exchanges.fields import epoch_millis, epoch_seconds, iso_time, number
from btc_pipeline.exchanges.http import HttpClient, decode_json
from btc_pipeline.steps.ingest import fetch_window
from btc_pipeline.window import MINUTE, Window, floor_minute

T = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T + timedelta(days=1)  # the parsers' clock
RULE = TimeRule(NOW)
WINDOW = Window(T, T + timedelta(minutes=2))
S = int(T.timestamp())
HUGE = 10**400  # a 400-digit integer: float() raises OverflowError
DEEP: Any = []
for _ in range(5000):  # deeper than the interpreter's recursion limit: repr() and str() raise RecursionError
    DEEP = [DEEP]


def kraken_ohlc(rows: Any) -> dict[str, Any]:
    return {"error": [], "result": {"XXBTZUSD": rows, "last": S}}


def bitstamp_ohlc(**row: Any) -> dict[str, Any]:
    fields = {"timestamp": str(S), "open": "1", "high": "2", "low": "1", "close": "1", "volume": "0"}
    return {"data": {"pair": "BTC/USD", "ohlc": [{**fields, **row}]}}


#: Every parser, as the clients call it (the window and the clock fixed).
PARSERS: dict[str, Callable[[Any], Any]] = {
    "coinbase candles": partial(coinbase.parse_candles, window=WINDOW, times=RULE),
    "coinbase ticker": partial(coinbase.parse_ticker, times=RULE),
    "kraken candles": partial(kraken.parse_candles, window=WINDOW, times=RULE),
    "kraken ticker": partial(kraken.parse_ticker, received_at=NOW),
    "binance candles": partial(binance.parse_candles, window=WINDOW, times=RULE),
    "binance ticker": partial(binance.parse_ticker, times=RULE),
    "bitstamp candles": partial(bitstamp.parse_candles, window=WINDOW, times=RULE),
    "bitstamp ticker": partial(bitstamp.parse_ticker, times=RULE),
}
CB_CANDLES, CB_TICKER, KR_CANDLES, KR_TICKER, BN_CANDLES, BN_TICKER, BS_CANDLES, BS_TICKER = PARSERS.values()

# (parser, body) pairs that must each end in ExchangeError
HOSTILE: list[tuple[str, Callable[[Any], Any], Any]] = [
    (
        "coinbase candle price 400 digits",
        CB_CANDLES,
        [[S, HUGE, 2, 1, 1, 0]],
    ),
    (
        "coinbase candle time 400 digits",
        CB_CANDLES,
        [[HUGE, 1, 2, 1, 1, 0]],
    ),
    ("coinbase deep candle row", CB_CANDLES, [DEEP]),
    ("coinbase deep error message", CB_TICKER, {"message": DEEP}),
    (
        "coinbase ticker size 400 digits",
        CB_TICKER,
        {"price": "1", "size": HUGE, "time": "2024-03-13T11:10:41Z"},
    ),
    (
        "coinbase ticker time year 1 +01:00",
        CB_TICKER,
        {"price": "1", "time": "0001-01-01T00:00:00+01:00"},
    ),
    (
        "kraken ohlc volume 400 digits",
        KR_CANDLES,
        kraken_ohlc([[S, "1", "2", "1", "1", "1", HUGE, 1], [S + 60, "1", "1", "1", "1", "1", "0", 0]]),
    ),
    ("kraken deep error", KR_CANDLES, {"error": [DEEP], "result": {}}),
    ("kraken deep ohlc row", KR_CANDLES, kraken_ohlc([DEEP, DEEP])),
    ("kraken deep ticker c", KR_TICKER, kraken_ohlc({"c": DEEP})),
    (
        "binance kline open 400 digits",
        BN_CANDLES,
        [[S * 1000, HUGE, "2", "1", "1", "1", S * 1000 + 59_999]],
    ),
    ("binance deep error", BN_TICKER, {"code": DEEP, "msg": DEEP}),
    (
        "binance ticker time 400 digits",
        BN_TICKER,
        {"lastPrice": "1", "closeTime": HUGE},
    ),
    (
        "bitstamp candle close 400 digits",
        BS_CANDLES,
        bitstamp_ohlc(close=HUGE),
    ),
    (
        "bitstamp candle time 400 digits",
        BS_CANDLES,
        bitstamp_ohlc(timestamp=HUGE),
    ),
    ("bitstamp errors a number", BS_TICKER, {"errors": 5}),
    ("bitstamp errors a number (candles)", BS_CANDLES, {"errors": 5}),
    (
        "bitstamp deep errors",
        BS_TICKER,
        {"status": "error", "reason": DEEP, "errors": [DEEP, {"field": DEEP}]},
    ),
    ("bitstamp deep row", BS_CANDLES, {"data": {"ohlc": [DEEP]}}),
]


@pytest.mark.parametrize(("parse", "body"), [(p, b) for _, p, b in HOSTILE], ids=[name for name, _, _ in HOSTILE])
def test_hostile_bodies_are_exchange_errors(parse: Callable[[Any], Any], body: Any) -> None:
    with pytest.raises(ExchangeError) as caught:
        parse(body)
    assert len(str(caught.value)) < 1000  # a short message, whatever the body held


@pytest.mark.parametrize(
    "value", [HUGE, -HUGE, str(HUGE), "1e400", float("inf"), DEEP, {"a": DEEP}], ids=lambda v: type(v).__name__
)
def test_number_refuses_what_is_no_finite_float(value: Any) -> None:
    with pytest.raises(ExchangeError, match=r"coinbase /x: price="):
        number(value, "coinbase", "/x", "price")


def test_a_parser_bug_is_an_exchange_error_naming_exchange_endpoint_and_class(sim: str) -> None:
    http = HttpClient("coinbase", f"{sim}/coinbase", timeout_s=1, deadline_s=30, max_body_bytes=1 << 20, retries=0)
    with pytest.raises(ExchangeError, match=r"coinbase /products/BTC-USD/ticker: .*KeyError") as caught:
        http.get_parsed("/products/BTC-USD/ticker", lambda body: body["no such field"])
    assert caught.value.exchange == "coinbase"


def test_failover_goes_on_when_a_parser_fails_unforeseen(sim: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A future parser bug (here: ZeroDivisionError) must not stop failover: the next exchange serves."""

    def broken(body: Any, window: Window, endpoint: str = "", **clock: Any) -> Any:
        return 1 / 0

    monkeypatch.setattr(coinbase.CoinbaseClient, "parse_candles", staticmethod(broken))
    names = ("coinbase", "bitstamp")
    settings = load_settings({"BTC_COINBASE_URL": f"{sim}/coinbase", "BTC_BITSTAMP_URL": f"{sim}/bitstamp/api/v2"})
    end = floor_minute(datetime.now(UTC)) - MINUTE * 3
    served, candles, reasons = fetch_window(
        Window(end - MINUTE * 3, end), [build_exchange(n, settings) for n in names], now=datetime.now(UTC)
    )
    assert served.name == "bitstamp" and len(candles) == 3
    assert "ZeroDivisionError" in reasons["coinbase"]


Y2096_S = int(datetime(2096, 1, 1, tzinfo=UTC).timestamp())
TICK_TIMES: list[tuple[str, Callable[..., Any], Any, str]] = [
    ("binance 2096", binance.parse_ticker, {"lastPrice": "1", "closeTime": Y2096_S * 1000}, "future_ts"),
    ("binance 1970", binance.parse_ticker, {"lastPrice": "1", "closeTime": 0}, "bad_ts"),
    ("bitstamp 2096", bitstamp.parse_ticker, {"last": "1", "timestamp": str(Y2096_S)}, "future_ts"),
    ("bitstamp 2008", bitstamp.parse_ticker, {"last": "1", "timestamp": "1220000000"}, "bad_ts"),
    ("coinbase 1970", coinbase.parse_ticker, {"price": "1", "time": "1970-01-01T00:00:00Z"}, "bad_ts"),
    ("coinbase 9999", coinbase.parse_ticker, {"price": "1", "time": "9999-12-31T23:59:59Z"}, "future_ts"),
    ("coinbase year 1", coinbase.parse_ticker, {"price": "1", "time": "0001-01-01T00:00:00+01:00"}, "bad_ts"),
    ("coinbase naive", coinbase.parse_ticker, {"price": "1", "time": "2026-01-01T10:00:00"}, "no UTC offset"),
    ("coinbase bare date", coinbase.parse_ticker, {"price": "1", "time": "2026-01-01"}, "no UTC offset"),
    ("coinbase 6 min ahead", coinbase.parse_ticker, {"price": "1", "time": "2026-01-02T00:06:01Z"}, "future_ts"),
]


@pytest.mark.parametrize(("parse", "body", "reason"), [t[1:] for t in TICK_TIMES], ids=[t[0] for t in TICK_TIMES])
def test_tick_times_outside_genesis_to_now_plus_skew_are_refused(
    parse: Callable[..., Any], body: Any, reason: str
) -> None:
    with pytest.raises(ExchangeError, match=reason):
        parse(body, times=RULE)


def test_a_tick_within_the_skew_passes_in_utc() -> None:
    tick = coinbase.parse_ticker({"price": "1", "time": "2026-01-02T01:04:00+01:00"}, times=RULE)
    assert tick.ts == NOW + timedelta(minutes=4) and tick.ts.tzinfo is UTC


def test_candle_times_are_checked_before_the_window_filter() -> None:
    """Seconds sent where milliseconds belong land in 1970: refused, not dropped as 'outside the window'."""
    with pytest.raises(ExchangeError, match="bad_ts"):
        binance.parse_candles([[S, "1", "2", "1", "1", "1", S + 59]], WINDOW, times=RULE)


@pytest.mark.parametrize("size", ["-0.5", "nan", "inf", "21000000.01", 1e300])
def test_absurd_tick_sizes_are_refused_at_the_parser(size: Any) -> None:
    absurd = "ticker size|is not a finite number"
    with pytest.raises(ExchangeError, match=absurd):
        coinbase.parse_ticker({"price": "1", "size": size, "time": "2026-01-01T00:00:00Z"}, times=RULE)
    with pytest.raises(ExchangeError, match=absurd):
        binance.parse_ticker({"lastPrice": "1", "lastQty": size, "closeTime": S * 1000}, times=RULE)
    with pytest.raises(ExchangeError, match=absurd):
        kraken.parse_ticker(kraken_ohlc({"c": ["1", size]}), received_at=NOW)


@pytest.mark.parametrize("size", ["0", "0.00000001", "21000000"])
def test_plausible_tick_sizes_pass(size: str) -> None:
    assert coinbase.parse_ticker(
        {"price": "1", "size": size, "time": "2026-01-01T00:00:00Z"}, times=RULE
    ).volume == float(size)


@pytest.mark.parametrize("skew_s, accepted", [(600, True), (120, False)])
def test_the_clock_skew_setting_reaches_every_client(sim: str, skew_s: int, accepted: bool) -> None:
    """A client whose clock runs 5 minutes behind the exchange's sees ticks from 'the future'."""
    env = {
        "BTC_COINBASE_URL": f"{sim}/coinbase",
        "BTC_BINANCE_URL": f"{sim}/binance",
        "BTC_BITSTAMP_URL": f"{sim}/bitstamp/api/v2",
        "BTC_MAX_CLOCK_SKEW_S": str(skew_s),
    }
    for name in ("coinbase", "binance", "bitstamp"):
        client = build_exchange(name, load_settings(env))
        client.clock = lambda: datetime.now(UTC) - timedelta(minutes=5)  # type: ignore[attr-defined]
        if accepted:
            assert client.fetch_ticker().price > 0
        else:
            with pytest.raises(ExchangeError, match="future_ts"):
                client.fetch_ticker()


# --- properties: any JSON value, and any JSON in each exchange's own shape, yields a value or ExchangeError

#: Values a field may hold: JSON scalars with the awkward ones made likely (huge and non-finite
#: numbers, numeric and ISO strings, times around the window and far from it).
FIELD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400) | st.integers(max_value=-(10**300)),
    st.floats(),
    st.sampled_from([S, S + 60, S * 1000, S * 1000 + 60_000, Y2096_S, 0, -1, 2**63]),
    st.sampled_from(["1", "-1", "0", "nan", "inf", "1e400", str(HUGE), str(S), "2026-01-01T00:00:00Z", "2026-01-01"]),
    st.text(max_size=12),
)
JSON = st.recursive(
    FIELD,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=25,
)


def fields_of(*names: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, FIELD | JSON))


ROWS = st.lists(st.lists(FIELD, min_size=5, max_size=9) | JSON, max_size=4)
SHAPES: dict[str, st.SearchStrategy[Any]] = {
    "coinbase candles": ROWS | fields_of("message"),
    "coinbase ticker": fields_of("price", "size", "time", "message"),
    "kraken candles": st.builds(kraken_ohlc, ROWS) | fields_of("error", "result"),
    "kraken ticker": st.builds(lambda c: kraken_ohlc({"c": c}), st.lists(FIELD, max_size=3) | JSON),
    "binance candles": ROWS | fields_of("code", "msg"),
    "binance ticker": fields_of("lastPrice", "lastQty", "closeTime", "code", "msg"),
    "bitstamp candles": st.builds(
        lambda rows: {"data": {"ohlc": rows}},
        st.lists(fields_of("timestamp", "open", "high", "low", "close", "volume"), max_size=3),
    )
    | fields_of("status", "reason", "errors"),
    "bitstamp ticker": fields_of("last", "timestamp", "status", "reason", "errors"),
}
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(PARSERS))
@FAST
@given(data=st.data())
def test_any_body_parses_to_values_or_an_exchange_error(name: str, data: st.DataObject) -> None:
    body = data.draw(JSON | SHAPES[name], label="body")
    try:
        result = PARSERS[name](body)
    except ExchangeError as exc:
        assert exc.exchange == name.split()[0]
        return
    for value in result if isinstance(result, list) else [result]:
        assert value.price > 0 and value.ts.tzinfo is UTC


@FAST
@given(value=FIELD | JSON)
def test_field_readers_give_a_value_or_an_exchange_error(value: Any) -> None:
    for read in (
        lambda: number(value, "bitstamp", "/x", "f"),
        lambda: epoch_seconds(value, "bitstamp", "/x", "f", RULE),
        lambda: epoch_millis(value, "bitstamp", "/x", "f", RULE),
        lambda: iso_time(value, "bitstamp", "/x", "f", RULE),
    ):
        try:
            read()
        except ExchangeError as exc:
            assert exc.exchange == "bitstamp"


@FAST
@given(raw=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_decode_to_json_or_an_exchange_error(raw: bytes) -> None:
    try:
        decode_json(raw, "kraken", "/x")
    except ExchangeError as exc:
        assert "body is not JSON" in exc.problem


@pytest.mark.parametrize("raw", [b"[" * 100_000, b"1" * 5000, b"\xff\xfe\x00", b'{"a": NaN}', b""])
def test_hostile_bytes_are_not_json(raw: bytes) -> None:
    try:
        decode_json(raw, "kraken", "/x")
    except ExchangeError:
        return
    assert raw == b'{"a": NaN}'  # Python's json reads NaN; the field readers refuse it
