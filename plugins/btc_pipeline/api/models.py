"""What the API answers: response bodies as pydantic models, with the examples ``/docs`` shows.

Times are UTC ISO-8601 with ``Z``; prices are US dollars; ages are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """Why a request was not answered (every 4xx and 5xx of the API has this body)."""

    error: Literal["bad_parameter", "database_unavailable", "internal"] = Field(
        description="bad_parameter (422), database_unavailable (503), internal (500)"
    )
    message: str = Field(description="What went wrong and what to do about it.")
    parameter: str | None = Field(default=None, description="The query parameter at fault (422 only).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "bad_parameter",
                    "message": "interval='2m' is not one of 1m, 5m, 1h, 1d",
                    "parameter": "interval",
                },
                {
                    "error": "database_unavailable",
                    "message": "MongoDB did not answer (database 'btc', ServerSelectionTimeoutError): is it up, "
                    "and does BTC_MONGO_URI point at it?",
                    "parameter": None,
                },
            ]
        }
    )


class ExchangeTick(BaseModel):
    """One exchange's latest ticker reading."""

    source: str = Field(description="The exchange.", examples=["coinbase"])
    price: float = Field(description="Its last trade price, USD.", examples=[97012.35])
    ts: datetime = Field(description="The exchange's time of that trade.", examples=["2026-11-26T16:04:51Z"])
    age_s: float = Field(description="Seconds between ts and the answer.", examples=[9.4])
    deviation_pct: float = Field(description="Percent above (+) or below (-) the consensus.", examples=[0.0123])
    stale: bool = Field(description="Older than BTC_STALE_AFTER_S.", examples=[False])


class LatestPrices(BaseModel):
    """The consensus price and each exchange's latest tick."""

    consensus: float | None = Field(
        description="The median of the exchanges' latest ticks, USD (null: no tick stored yet).", examples=[97010.5]
    )
    newest: datetime | None = Field(description="The newest tick's time.", examples=["2026-11-26T16:04:58Z"])
    age_s: float | None = Field(description="Seconds since the newest tick.", examples=[2.1])
    as_of: datetime = Field(description="When this answer was made.", examples=["2026-11-26T16:05:00.512Z"])
    exchanges: list[ExchangeTick] = Field(description="One entry per exchange, by price.")


class Candle(BaseModel):
    """One OHLCV bar: the bar that starts at ``ts``."""

    ts: datetime = Field(description="The bar's start.", examples=["2026-11-26T16:00:00Z"])
    open: float = Field(examples=[96990.0])
    high: float = Field(examples=[97050.5])
    low: float = Field(examples=[96950.1])
    close: float = Field(examples=[97012.3])
    volume: float | None = Field(description="BTC traded (null for tick series).", examples=[12.53])
    n: int = Field(
        description="What the bar summarises: exchanges in a consensus minute, else 1-minute bars.", examples=[1]
    )


class CandlePage(BaseModel):
    """A page of candles, oldest first; follow ``next`` until it is null."""

    source: str = Field(examples=["consensus"])
    interval: Literal["1m", "5m", "1h", "1d"] = Field(examples=["1m"])
    start: datetime = Field(
        alias="from", description="This page's start (inclusive).", examples=["2026-11-25T16:05:00Z"]
    )
    end: datetime = Field(alias="to", description="This page's end (exclusive).", examples=["2026-11-26T16:05:00Z"])
    count: int = Field(description="Candles on this page (fewer than the page's slots where bars are missing).")
    next: str | None = Field(
        description="The URL of the next page, or null when this page ends the range.",
        examples=["/v1/candles?interval=1m&source=consensus&format=json&limit=5000&from=2026-11-29T11:20:00Z"],
    )
    candles: list[Candle]

    model_config = ConfigDict(populate_by_name=True)


class MinuteRangeOut(BaseModel):
    """Consecutive minutes without a candle, all for the same reason."""

    start: datetime = Field(examples=["2026-11-26T03:10:00Z"])
    end: datetime = Field(examples=["2026-11-26T03:12:00Z"])
    minutes: int = Field(examples=[2])
    status: Literal["missing", "no_trades"] = Field(
        description="missing: a hole; no_trades: the exchange(s) in sources said they had no trades."
    )
    sources: list[str] = Field(examples=[["coinbase"]])


class GapReportOut(BaseModel):
    """The gaps of a range, as ``btc-pipeline gaps --json`` prints them."""

    start: datetime = Field(examples=["2026-11-25T16:05:00Z"])
    end: datetime = Field(examples=["2026-11-26T16:05:00Z"])
    source: str | None = Field(description="The exchange checked; null: any exchange.", examples=[None])
    minutes: int = Field(description="Minutes in the range.", examples=[1440])
    present: int = Field(description="Minutes with a candle.", examples=[1437])
    missing_minutes: int = Field(examples=[1])
    no_trade_minutes: int = Field(examples=[2])
    ranges: list[MinuteRangeOut]


class Reading(BaseModel):
    """The newest observation of one kind from one exchange."""

    ts: datetime = Field(description="Tick: the exchange's trade time; candle: the minute's start.")
    price: float = Field(description="Tick: the trade price; candle: the close.")
    age_s: float = Field(description="Tick: seconds since ts; candle: seconds since the minute closed.")


class ExchangeFreshness(BaseModel):
    source: str = Field(examples=["coinbase"])
    tick: Reading | None
    candle: Reading | None


class DagRun(BaseModel):
    """The last run of a DAG that the pipeline recorded."""

    dag_id: str = Field(examples=["btc_drain"])
    run_id: str = Field(examples=["scheduled__2026-11-26T16:04:30+00:00"])
    state: str = Field(description="success or failed.", examples=["success"])
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failed_task: str | None = Field(default=None, description="The task that failed (failed runs).")
    error: str | None = Field(default=None, description="Its error (failed runs).")


class Health(BaseModel):
    """Whether the data is fresh, and what the pipeline last did. 200 when ok, 503 otherwise."""

    status: Literal["ok", "stale", "unavailable"] = Field(
        description="ok: the newest tick or candle is younger than stale_after_s; stale: it is older (or there is "
        "none); unavailable: MongoDB did not answer."
    )
    reasons: list[str] = Field(description="Why the status is not ok (empty when ok).")
    stale_after_s: int = Field(description="BTC_STALE_AFTER_S.", examples=[120])
    checked_at: datetime
    newest: datetime | None = Field(description="The newest observation's time (a candle's: its close).")
    age_s: float | None = Field(description="Seconds since newest.", examples=[4.2])
    consumer_lag: int | None = Field(
        description="Messages left in the topic after the last btc_drain run (null: no run recorded).", examples=[0]
    )
    exchanges: list[ExchangeFreshness]
    dags: list[DagRun] = Field(description="The last recorded run of each DAG.")
