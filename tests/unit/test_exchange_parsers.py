"""The Kraken, Binance and Bitstamp parsers, fed with every real captured body, and their refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from btc_pipeline.exchanges import binance, bitstamp, coinbase, kraken
from btc_pipeline.exchanges.base import Candle, ExchangeError, Tick, TimeRule
from btc_pipeline.window import Window

RECEIVED = datetime(2024, 3, 13, 11, 10, 42, 500000, tzinfo=UTC)
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # the parsers' clock: every time must be before it
RULE = TimeRule(NOW)


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def hours(first: int, count: int) -> Window:
    return Window(at(first), at(first) + timedelta(hours=count))


# capture file -> (parse it, what it must give). Every file in captures/ must be listed here.
CAPTURES: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "kraken_ticker": (
        lambda body: kraken.parse_ticker(body, received_at=RECEIVED),
        Tick(ts=RECEIVED, price=73380.6, volume=0.0016071),
    ),
    "kraken_ohlc": (
        # hourly rows; the 6th row (1706799600) is the unfinished one and must be dropped
        lambda body: kraken.parse_candles(body, hours(1706626800, 60), times=RULE),
        [
            Candle(at(1706626800), 43437.5, 43593.7, 43355.5, 43361.1, 18.7543011),
            Candle(at(1706630400), 43366.3, 43529.2, 43234.2, 43485.0, 12.51327406),
            Candle(at(1706634000), 43497.5, 43594.6, 43316.4, 43409.5, 5.03074129),
            Candle(at(1706637600), 43398.3, 43500.5, 42983.1, 43386.6, 81.88339686),
            Candle(at(1706641200), 43375.0, 43539.7, 43357.1, 43539.7, 10.82796308),
        ],
    ),
    "binance_ticker_24hr": (
        partial(binance.parse_ticker, times=RULE),
        # closeTime 1710328245391 ms (stringified by the capture) is the tick time
        Tick(ts=datetime(2024, 3, 13, 11, 10, 45, 391000, tzinfo=UTC), price=73369.84, volume=0.23925),
    ),
    "binance_klines": (
        lambda body: binance.parse_candles(body, hours(1706630400, 3), times=RULE),
        [
            Candle(at(1706630400), 43519.34, 43936.0, 43171.0, 43488.71, 20.55495),
            Candle(at(1706634000), 43488.71, 43832.08, 43084.0, 43374.8, 21.80865),
            Candle(at(1706637600), 43374.81, 44048.0, 43062.0, 43361.11, 23.66547),
        ],
    ),
    "binance_futures_klines_1m": (
        lambda body: binance.parse_candles(body, Window(at(1712738460), at(1712738460 + 180)), times=RULE),
        [
            Candle(at(1712738460), 71481.9, 71481.9, 71481.9, 71481.9, 0.002),
            Candle(at(1712738520), 71471.0, 71471.0, 70459.4, 70459.4, 0.12),
            Candle(at(1712738580), 71470.7, 71470.9, 70459.4, 70459.4, 1.542),
        ],
    ),
    "bitstamp_ticker": (
        partial(bitstamp.parse_ticker, times=RULE),
        Tick(ts=at(1710328241), price=73285.0, volume=None),
    ),
    "bitstamp_ohlc": (
        lambda body: bitstamp.parse_candles(body, hours(1710327600, 1), times=RULE),
        [Candle(at(1710327600), 73241.0, 73293.0, 73240.0, 73285.0, 0.01076655)],
    ),
    "coinbaseexchange_ticker": (
        partial(coinbase.parse_ticker, times=RULE),
        Tick(ts=datetime(2024, 3, 13, 11, 10, 41, 270099, tzinfo=UTC), price=73367.8, volume=0.00730812),
    ),
    "coinbaseexchange_candles": (
        lambda body: coinbase.parse_candles(body, hours(1710327600, 1), times=RULE),
        [Candle(at(1710327600), 73243.33, 73402.47, 73241.5, 73370.65, 1.56794406)],
    ),
}


def load(realdata: Path, name: str) -> Any:
    return json.loads((realdata / "captures" / f"{name}.json").read_text())


def test_every_capture_is_fed_through_a_parser(realdata):
    on_disk = {p.stem for p in (realdata / "captures").glob("*.json")}
    # coinbase_advanced_ticker is the Advanced Trade API: refused, see the next test
    assert on_disk == set(CAPTURES) | {"coinbase_advanced_ticker"}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_real_capture_parses_to_the_expected_values(realdata, name):
    parse, expected = CAPTURES[name]
    assert parse(load(realdata, name)) == expected


def test_advanced_trade_ticker_is_refused_by_the_exchange_parser(realdata):
    """The Advanced Trade API's ticker (``trades``, ``best_bid``) is not Coinbase Exchange's shape."""
    with pytest.raises(ExchangeError, match=r"coinbase /products/BTC-USD/ticker: ticker has no 'price' field"):
        coinbase.parse_ticker(load(realdata, "coinbase_advanced_ticker"), times=RULE)


def test_kraken_result_is_keyed_by_krakens_own_pair_name(realdata):
    body = load(realdata, "kraken_ticker")
    body["result"] = {"XXBTZUSD": body["result"]["XBTUSDT"]}
    assert kraken.parse_ticker(body, received_at=RECEIVED).price == 73380.6


def test_kraken_ohlc_last_may_be_a_number_or_a_string(realdata):
    body = load(realdata, "kraken_ohlc")
    body["result"]["last"] = 1706796000  # the docs' example has an integer, the capture a string
    assert len(kraken.parse_candles(body, hours(1706626800, 60), times=RULE)) == 5


def test_kraken_full_horizon_starting_after_the_window_is_refused():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        [int((start + timedelta(minutes=m)).timestamp()), "1.0", "1.0", "1.0", "1.0", "1.0", "0.1", 1]
        for m in range(5, 5 + kraken.OHLC_HORIZON_ROWS)
    ]
    body = {"error": [], "result": {"XXBTZUSD": rows, "last": rows[-2][0]}}
    with pytest.raises(ExchangeError, match="beyond Kraken's 720-minute horizon"):
        kraken.parse_candles(body, Window(start, start + timedelta(minutes=10)), times=RULE)
    # the same rows serve a window inside them
    inside = Window(start + timedelta(minutes=5), start + timedelta(minutes=10))
    assert len(kraken.parse_candles(body, inside, times=RULE)) == 5


@pytest.mark.parametrize(
    ("errors", "transient"),
    [
        (["EService:Unavailable"], True),
        (["EService:Busy"], True),
        (["EAPI:Rate limit exceeded"], True),
        (["EService: Throttled: 1710328241"], True),
        (["EQuery:Unknown asset pair"], False),
        (["EService:Unavailable", "EGeneral:Invalid arguments"], False),
    ],
)
def test_kraken_error_array_is_a_failure_with_its_strings(errors, transient):
    with pytest.raises(ExchangeError) as info:
        kraken.parse_ticker({"error": errors, "result": {}}, received_at=RECEIVED)
    for text in errors:
        assert text in str(info.value)
    assert info.value.transient is transient
    assert info.value.exchange == "kraken"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "expected a JSON object {error, result}"),
        ({"error": "EService:Unavailable"}, "'error' is str, expected an array"),
        ({"error": []}, "'result' is NoneType, expected an object"),
        ({"error": [], "result": {"last": "1"}}, "expected exactly one pair"),
        ({"error": [], "result": {"XXBTZUSD": [], "XBTUSDT": [], "last": "1"}}, "expected exactly one pair"),
        ({"error": [], "result": {"XXBTZUSD": {}, "last": "1"}}, "OHLC rows are dict"),
        ({"error": [], "result": {"XXBTZUSD": [[1767225600, "1", "2"], []]}}, "is not [time, open, high"),
        ({"error": [], "result": {"XXBTZUSD": [[1767225600, "x", "2", "1", "1", "1", "1", 1], []]}}, "open='x'"),
        ({"error": [], "result": {"XXBTZUSD": [[1767225600, "1", "2", "1", "1", "1", "-1", 1], []]}}, "volume=-1"),
        (
            {"error": [], "result": {"XXBTZUSD": [[17672256, "1", "2", "1", "1", "1", "1", 1], []]}},
            "bad_ts: time=1970-07-24",
        ),
    ],
)
def test_bad_kraken_ohlc_bodies(body, problem):
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ExchangeError, match=problem.replace("[", r"\[").replace("{", r"\{").replace("}", r"\}")):
        kraken.parse_candles(body, Window(t, t + timedelta(minutes=2)), times=RULE)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"a": ["1", "1", "1"]}, "'c' (last trade) is None"),
        ({"c": ["73380.6"]}, "'c' (last trade) is ['73380.6']"),
        ({"c": ["0", "1"]}, "not a positive number"),
        ({"c": ["abc", "1"]}, "c[0] (last price)='abc' is not a number"),
        ({"c": [None, "1"]}, "is not a number"),
    ],
)
def test_bad_kraken_ticker_entries(entry, problem):
    with pytest.raises(ExchangeError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        kraken.parse_ticker({"error": [], "result": {"XXBTZUSD": entry}}, received_at=RECEIVED)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"code": -1121, "msg": "Invalid symbol."}, "Binance error -1121: 'Invalid symbol.'"),
        ({"klines": []}, "expected a JSON array of klines"),
        ([[1767225600000, "1", "2"]], "is not [openTime, open, high"),
        ([[1767225600, "1", "2", "1", "1", "1", 1767225659]], "bad_ts: openTime=1970-01-21"),
        ([[1767225600000, "1", "2", "1", "3", "1", 1767225659999]], "violates low <= open,close <= high"),
        ([[1767225600000, "1", "2", "1", "inf", "1", 1767225659999]], "is not a finite number"),
        ([[1767225630000, "1", "2", "1", "1", "1", 1767225689999]], "not on a whole minute"),
    ],
)
def test_bad_binance_kline_bodies(body, problem):
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ExchangeError, match=problem.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        binance.parse_candles(body, Window(t, t + timedelta(minutes=2)), times=RULE)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"code": -1003, "msg": "Too much request weight used"}, "Binance error -1003"),
        ([], "expected a JSON object"),
        ({"lastPrice": "1"}, "no 'closeTime' field"),
        ({"closeTime": 1710328245391}, "no 'lastPrice' field"),
        ({"lastPrice": "1", "closeTime": 1710328245.5}, "not a whole number of milliseconds"),
        ({"lastPrice": "-1", "closeTime": 1710328245391}, "not a positive number"),
        ({"lastPrice": True, "closeTime": 1710328245391}, "lastPrice=True is not a number"),
    ],
)
def test_bad_binance_ticker_bodies(body, problem):
    with pytest.raises(ExchangeError, match=problem):
        binance.parse_ticker(body, times=RULE)


def test_binance_ticker_accepts_numeric_times():
    tick = binance.parse_ticker({"lastPrice": "100.5", "closeTime": 1710328245391}, times=RULE)
    assert tick.ts == datetime(2024, 3, 13, 11, 10, 45, 391000, tzinfo=UTC)
    assert tick.volume is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            {"status": "error", "reason": "Invalid request", "errors": [{"field": "limit", "message": "Must be 1"}]},
            "Bitstamp error: Invalid request; limit: Must be 1",
        ),
        ({"errors": ["Missing data for required field."]}, "Bitstamp error: Missing data"),
        ({"data": {"pair": "BTC/USD"}}, "no 'data.ohlc' array"),
        ([], "no 'data.ohlc' array"),
        ({"data": {"ohlc": [["1767225600", "1"]]}}, "is not an object"),
        ({"data": {"ohlc": [{"timestamp": "1767225600", "open": "1"}]}}, "lacks ['high', 'low', 'close', 'volume']"),
        (
            {"data": {"ohlc": [{"timestamp": "x", "open": "1", "high": "1", "low": "1", "close": "1", "volume": "0"}]}},
            "timestamp='x' is not a number",
        ),
    ],
)
def test_bad_bitstamp_ohlc_bodies(body, problem):
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ExchangeError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        bitstamp.parse_candles(body, Window(t, t + timedelta(minutes=2)), times=RULE)


def test_bitstamp_flat_zero_volume_minutes_are_candles(realdata):
    """Bitstamp sends minutes without trades as flat, zero-volume rows: they are real candles."""
    import csv

    with (realdata / "series/bitstamp_btcusd_1min_2025-01-07_slice.csv").open() as f:
        rows = list(csv.DictReader(f))
    body = {"data": {"pair": "BTC/USD", "ohlc": rows}}
    start = at(int(rows[0]["timestamp"]))
    candles = bitstamp.parse_candles(body, Window(start, start + timedelta(minutes=len(rows))), times=RULE)
    assert len(candles) == 332
    assert sum(1 for c in candles if c.volume == 0) == 59


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"status": "error", "reason": "Invalid currency pair"}, "Bitstamp error: Invalid currency pair"),
        ([], "expected a JSON object"),
        ({"last": "73285"}, "no 'timestamp' field"),
        ({"timestamp": "1710328241"}, "no 'last' field"),
        ({"last": "73285", "timestamp": "2024-03-13"}, "timestamp='2024-03-13' is not a number"),
        ({"last": "0", "timestamp": "1710328241"}, "not a positive number"),
    ],
)
def test_bad_bitstamp_ticker_bodies(body, problem):
    with pytest.raises(ExchangeError, match=problem):
        bitstamp.parse_ticker(body, times=RULE)
