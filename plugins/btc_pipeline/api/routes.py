"""The API's routes. Each reads the store's read model (never ``btc.prices``), so its cost follows
the size of the answer; parameters are checked in :mod:`btc_pipeline.api.params`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from btc_pipeline import export
from btc_pipeline.api import params
from btc_pipeline.api.errors import database_message
from btc_pipeline.api.models import (
    Candle,
    CandlePage,
    DagRun,
    ExchangeFreshness,
    ExchangeTick,
    GapReportOut,
    Health,
    LatestPrices,
    Problem,
    Reading,
)
from btc_pipeline.bars import Bar, Interval
from btc_pipeline.config import Settings
from btc_pipeline.health import Freshness, PipelineHealth, pipeline_health
from btc_pipeline.quotes import quote
from btc_pipeline.steps.gaps import find_gaps
from btc_pipeline.store import Store, StoreError
from btc_pipeline.timeutil import format_ts


@dataclass(frozen=True)
class ApiContext:
    """What every route needs: the settings, the store, the clock, the metrics registry."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime]
    registry: CollectorRegistry


def context(request: Request) -> ApiContext:
    api = request.app.state.api
    assert isinstance(api, ApiContext)
    return api


Api = Annotated[ApiContext, Depends(context)]

JSON = "application/json"
PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "A parameter cannot be used; `parameter` names it."},
    503: {"model": Problem, "description": "MongoDB did not answer."},
}


def time_query(name: str, description: str) -> Any:
    """The ``Query`` of a ``from`` / ``to`` parameter (text checked by :func:`params.time_param`)."""
    return Query(alias=name, description=f"{description} {params.TIME_DOC}", examples=TIME_EXAMPLES[name])


TIME_EXAMPLES = {"from": ["2h", "2026-11-26T10:00:00Z"], "to": ["now", "2026-11-26T16:00:00Z"]}

router = APIRouter()


@router.get("/livez", tags=["operations"], summary="Liveness: 200 whenever the server runs (no database read)")
def livez() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/v1/prices/latest",
    tags=["prices"],
    summary="Each exchange's latest tick and the consensus (median)",
    response_model=LatestPrices,
    responses=PROBLEMS,
)
def latest_prices(api: Api) -> LatestPrices:
    """The latest ticker reading of every exchange (price, the exchange's time of it, its age) and
    the consensus: their median, as the dashboard shows it. Served from the store's hot set
    (`btc.latest`: a few documents, whatever the history)."""
    now = api.clock()
    q = quote(api.store.latest(), now)
    stale = api.settings.stale_after_s
    return LatestPrices(
        consensus=q.consensus,
        newest=q.newest,
        age_s=q.age_s,
        as_of=now,
        exchanges=[ExchangeTick(**asdict(x), stale=x.age_s > stale) for x in q.exchanges],
    )


CANDLE_CONTENT = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "ts,open,high,low,close,volume,n\n2026-11-26T16:00:00Z,96990.0,97050.5,96950.1,97012.3,12.53,1\n",
    },
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}


@router.get(
    "/v1/candles",
    tags=["prices"],
    summary="OHLCV candles of a range, oldest first, a page at a time",
    response_model=CandlePage,
    responses={
        200: {
            "description": "A page of candles: JSON (format=json), CSV or Parquet with columns "
            "ts, open, high, low, close, volume, n. CSV and Parquet give the next page in a Link header.",
            "content": CANDLE_CONTENT,
            "headers": {
                "Link": {"description": '`<next page URL>; rel="next"` (csv, parquet)', "schema": {"type": "string"}}
            },
        },
        **PROBLEMS,
    },
)
def candles(
    api: Api,
    interval: Annotated[Interval, Query(description="Bar size.")] = "1m",
    source: Annotated[
        str,
        Query(
            description="`consensus` (the default: each minute the median of the exchanges' candles), an exchange's "
            "candles (`coinbase`), or an exchange's ticker readings as bars (`coinbase-ticks`).",
            json_schema_extra={"enum": list(params.CANDLE_SOURCES)},
        ),
    ] = "consensus",
    start: Annotated[
        str | None,
        time_query("from", f"Range start (inclusive). Default: `to` minus {params.per_interval(params.DEFAULT_SPAN)}."),
    ] = None,
    end: Annotated[
        str | None,
        time_query(
            "to",
            "Range end (exclusive). Default, and the latest allowed: now (every bar that has started); a later "
            "`to` is cut back to it. The range may span at most "
            f"{params.per_interval(params.MAX_RANGE)}.",
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1, le=params.MAX_LIMIT, description="Bars per page: a page is the next `limit` intervals of the range."
        ),
    ] = params.DEFAULT_LIMIT,
    fmt: Annotated[params.ApiFormat, Query(alias="format", description="Response format.")] = "json",
) -> Response:
    """Candles of `source` at `interval` whose start lies in `[from, to)`, oldest first, from the
    read model. A range longer than `limit` bars comes in pages: follow `next` (JSON) or the `Link`
    header (CSV, Parquet) until there is none. A page may hold fewer candles than `limit` where bars
    are missing (no trades, a hole); `btc-pipeline gaps` and `/v1/gaps` say which."""
    q = params.candle_query(
        interval=interval, source=source, start=start, end=end, limit=limit, fmt=fmt, now=api.clock()
    )
    next_url = None
    if q.next_from is not None:
        query = {
            "interval": q.interval,
            "source": q.series,
            "format": q.format,
            "limit": q.limit,
            "from": format_ts(q.next_from),
            "to": format_ts(q.window.end),
        }
        next_url = "/v1/candles?" + urlencode(query)
    if q.format == "json":
        page = candle_page(q, api.store.bar_list(q.series, q.interval, q.page), next_url)
        return Response(page.model_dump_json(by_alias=True), media_type=JSON)
    frame = api.store.bars(q.series, q.interval, q.page)
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return Response(export.to_bytes(frame, q.format), media_type=params.MEDIA_TYPES[q.format], headers=headers)


def candle_page(q: params.CandleQuery, bars: list[tuple[datetime, Bar]], next_url: str | None) -> CandlePage:
    """The JSON page of candles (the bars come from the store, valid by construction: built without
    validating each one again, ~17 ms for a day of minutes)."""
    candles = [
        Candle.model_construct(ts=ts, open=b.open, high=b.high, low=b.low, close=b.close, volume=b.volume, n=b.n)
        for ts, b in bars
    ]
    page = {"from": q.page.start, "to": q.page.end}  # the fields' aliases: `from` is a keyword
    return CandlePage(source=q.series, interval=q.interval, count=len(bars), next=next_url, candles=candles, **page)


@router.get(
    "/v1/gaps",
    tags=["prices"],
    summary="Minutes without a candle: holes and minutes without trades, as `btc-pipeline gaps` reports them",
    response_model=GapReportOut,
    responses=PROBLEMS,
)
def gaps(
    api: Api,
    start: Annotated[str | None, time_query("from", "Range start (inclusive). Default: `to` minus 24 hours.")] = None,
    end: Annotated[
        str | None,
        time_query(
            "to",
            "Range end (exclusive), at most the end of the last closed minute (the default). The range may span "
            f"at most {params.in_words(params.MAX_GAP_RANGE)}.",
        ),
    ] = None,
    source: Annotated[
        str | None,
        Query(
            description="Check this exchange's candles only. Default: any exchange (a minute is present when "
            "some exchange has its candle).",
            json_schema_extra={"enum": list(params.GAP_SOURCES)},
        ),
    ] = None,
) -> GapReportOut:
    """The minutes of `[from, to)` without a 1-minute candle, merged into ranges: `missing` (a hole)
    or `no_trades` (the exchanges in `sources` said they had no trades then). The same report as
    `btc-pipeline gaps --json`."""
    window, exchange = params.gap_window(start=start, end=end, source=source, now=api.clock())
    report = find_gaps(api.store, window, api.settings.symbol, exchange)
    return GapReportOut.model_validate(report.to_dict())


@router.get(
    "/v1/health",
    tags=["operations"],
    summary="Freshness of the data and the last run of each DAG: 200 when fresh, 503 when stale",
    response_model=Health,
    responses={
        503: {"model": Health, "description": "Stale (older than BTC_STALE_AFTER_S), or MongoDB did not answer."}
    },
)
def health(api: Api) -> JSONResponse:
    """The newest tick and candle of each exchange and their age, the consumer lag after the last
    `btc_drain` run, and the last recorded run of each DAG. The status is `ok` (HTTP 200) when the
    newest tick or candle is younger than `BTC_STALE_AFTER_S` (a candle counts from its close),
    else `stale` (503), or `unavailable` (503) when MongoDB does not answer: usable as a probe."""
    now, stale_after_s = api.clock(), api.settings.stale_after_s
    try:
        body = health_body(pipeline_health(api.store.latest(), api.store.recent_runs(), now, stale_after_s))
    except StoreError as exc:  # what is known without the database: nothing
        nothing = health_body(pipeline_health([], [], now, stale_after_s))
        body = nothing.model_copy(
            update={"status": "unavailable", "reasons": [database_message(exc, api.settings.mongo_db)]}
        )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503)


def _reading(f: Freshness | None) -> Reading | None:
    return None if f is None else Reading(ts=f.observation.ts, price=f.observation.price, age_s=round(f.age_s, 1))


def health_body(report: PipelineHealth) -> Health:
    """The ``/v1/health`` body of a health report (ages to a tenth of a second)."""
    return Health(
        status=report.status,
        reasons=report.reasons,
        stale_after_s=report.stale_after_s,
        checked_at=report.checked_at,
        newest=report.newest,
        age_s=None if report.age_s is None else round(report.age_s, 1),
        consumer_lag=report.consumer_lag,
        exchanges=[
            ExchangeFreshness(source=source, tick=_reading(kinds.get("tick")), candle=_reading(kinds.get("candle")))
            for source, kinds in sorted(report.by_exchange().items())
        ],
        dags=[DagRun.model_validate(runs[0], from_attributes=True) for runs in report.dags.values()],
    )


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."}
    },
)
def metrics(api: Api) -> Response:
    """Data age per exchange and kind, consumer lag, rejects, runs by DAG and state, exchange
    failovers, the store's reachability and the API's own request latencies (see the README)."""
    return Response(generate_latest(api.registry), media_type=CONTENT_TYPE_LATEST)
