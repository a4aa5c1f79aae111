"""The app factory: ``uvicorn --factory btc_pipeline.api.app:create_app --port 8000``.

The app reads MongoDB only through :class:`~btc_pipeline.store.Store` (``Store.lazy``: it starts
without the database and answers 503 until it is reachable), with a :class:`BucketCache` of the
read model's closed buckets: a bar older than :data:`CACHE_SETTLE_S` is at most
:data:`CACHE_TTL_S` seconds stale in the API; newer bars are always read from the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline

from btc_pipeline.api import errors, metrics, routes
from btc_pipeline.config import Settings, load_settings
from btc_pipeline.store import BucketCache, Store

#: How long a cached bucket is served: the most a backfilled or corrected old bar lags in the API.
CACHE_TTL_S = 30.0
#: Buckets whose span ended less than this long ago are never cached (the drain still fills them).
CACHE_SETTLE_S = 300.0

DESCRIPTION = """
Read-only access to the BTC-USD prices the pipeline stores: the latest tick of each exchange and
their consensus, OHLCV candles at 1m / 5m / 1h / 1d (JSON, CSV or Parquet), the gaps in the
1-minute candles, and the pipeline's health and metrics.

**Times** (`from`, `to`): ISO-8601 (`2026-11-26T10:00:00Z`, `2026-11-26T11:00+01:00`; no offset =
UTC), `now`, or an age such as `90m`, `2h`, `30d` (now minus that), floored to the minute. Ranges
are `[from, to)`.

**Errors** have a JSON body `{"error", "message", "parameter"}`: 422 for a parameter that cannot be
used (the message names it), 503 when MongoDB does not answer.

**Freshness**: the newest bars are always read from the database; bars older than five minutes may
be served from the API's cache for up to 30 s (a backfill of an old range shows within 30 s).
"""


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The read API.

    Args:
        settings: The pipeline's settings (``BTC_*``); read from the environment when omitted.
        store: Where to read; ``Store.lazy(BTC_MONGO_URI, BTC_MONGO_DB)`` with a bucket cache when omitted.
        clock: The current time (tests pass a fixed one).

    Returns:
        The app, ready for uvicorn or a test client.

    Raises:
        ConfigError: A ``BTC_*`` setting is invalid; the message names it.
    """
    settings = settings or load_settings()
    store = store or Store.lazy(
        settings.mongo_uri, settings.mongo_db, cache=BucketCache(ttl_s=CACHE_TTL_S, settle_s=CACHE_SETTLE_S)
    )
    now = clock or (lambda: datetime.now(UTC))
    app = FastAPIOffline(  # /docs and /redoc work without internet: their scripts are served from here
        title="btc-pipeline read API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "prices", "description": "Ticks, candles and gaps, from the read model."},
            {"name": "operations", "description": "Health probe, liveness and Prometheus metrics."},
        ],
    )
    registry, latency = metrics.registry(store, now, settings.stale_after_s)
    app.state.api = routes.ApiContext(settings=settings, store=store, clock=now, registry=registry)
    app.include_router(routes.router)
    app.add_api_route("/", lambda: RedirectResponse("/docs"), include_in_schema=False)
    errors.install(app, settings.mongo_db)
    app.add_middleware(metrics.RequestTimer, latency=latency)
    return app
