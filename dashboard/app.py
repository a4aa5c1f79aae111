"""btc-pipeline dashboard: live BTC-USD prices from MongoDB (``btc.prices``), refreshing itself.

Run: ``streamlit run dashboard/app.py`` (the local stack and Docker do this for you).
Reads only MongoDB, configured by ``BTC_MONGO_URI`` / ``BTC_MONGO_DB`` (see .env.example).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from btc_pipeline.bars import interval_for
from btc_pipeline.config import ConfigError, load_settings
from btc_pipeline.quotes import quote
from btc_pipeline.store import CONSENSUS, Store, StoreError
from btc_pipeline.timeutil import floor_minute
from btc_pipeline.window import MINUTE, Window

st.set_page_config(page_title="BTC-USD live", page_icon=":chart_with_upwards_trend:", layout="wide")

try:
    SETTINGS = load_settings()
except ConfigError as exc:
    st.error(f"Configuration error: {exc}")
    st.stop()

RANGES = {
    "1 hour": timedelta(hours=1),
    "6 hours": timedelta(hours=6),
    "24 hours": timedelta(hours=24),
    "7 days": timedelta(days=7),
    "30 days": timedelta(days=30),
    "1 year": timedelta(days=365),
}


@st.cache_resource
def store() -> Store:
    return Store.lazy(SETTINGS.mongo_uri, SETTINGS.mongo_db)


@st.cache_data(ttl=SETTINGS.dashboard_refresh_s, show_spinner=False)
def fetch(span_s: int, source: str) -> tuple[Any, Any, Any]:
    """The reads of one refresh, all from the read model: bars of the range, the hot set, the last runs."""
    now = datetime.now(UTC)
    span = timedelta(seconds=span_s)
    end = floor_minute(now) + MINUTE  # the current minute's bar too, as it fills
    bars = store().bars(source, interval_for(span), Window(end - span, end))
    return bars, store().latest(), store().recent_runs()


st.title("BTC-USD — live pipeline")
left, right = st.columns([3, 1])
span_label = right.radio("Range", list(RANGES), index=0, horizontal=True)
source = right.selectbox(
    "Source",
    [CONSENSUS, *SETTINGS.exchanges],
    index=0,
    help="consensus: the median of the exchanges' candles in each minute (with failover, the exchange that served)",
)


@st.fragment(run_every=SETTINGS.dashboard_refresh_s)
def live() -> None:
    span = RANGES[span_label]
    try:
        candles, latest, runs = fetch(int(span.total_seconds()), source)
    except StoreError as exc:
        st.error(f"MongoDB is not reachable at the configured BTC_MONGO_URI: {exc}")
        return
    now = datetime.now(UTC)
    live_quote = quote(latest, now)
    c1, c2, c3, c4 = st.columns(4)
    if live_quote.consensus is not None:
        c1.metric("Last price", f"${live_quote.consensus:,.2f}", help="median of the exchanges' latest readings")
        c2.metric("Tick age", f"{live_quote.age_s:,.0f} s")
    else:
        c1.metric("Last price", "—")
        c2.metric("Tick age", "—")
    if candles.empty:
        c3.metric("Candles in range", 0)
        st.info("No candles in this range yet. Is btc_ingest running and unpaused in Airflow?")
    else:
        first, last = candles.iloc[0], candles.iloc[-1]
        change = (last["close"] / first["open"] - 1) * 100
        c3.metric("Candles in range", f"{len(candles):,}")
        c4.metric(f"Change ({span_label})", f"{change:+.2f} %", help=f"last close ${last['close']:,.2f}")
        rule = interval_for(span)
        bars = candles
        fig = go.Figure(
            go.Candlestick(
                x=bars["ts"], open=bars["open"], high=bars["high"], low=bars["low"], close=bars["close"], name="BTC-USD"
            )
        )
        fig.update_layout(
            height=480,
            margin={"l": 10, "r": 10, "t": 30, "b": 10},
            xaxis_rangeslider_visible=False,
            title=f"BTC-USD {rule} candles, {source} (UTC)",
        )
        st.plotly_chart(fig, use_container_width=True, key="candles")
    if live_quote.exchanges:
        st.caption("Latest ticker per exchange and its deviation from their median")
        st.table(
            [
                {
                    "exchange": q.source,
                    "price": f"${q.price:,.2f}",
                    "trade time (UTC)": f"{q.ts:%H:%M:%S}",
                    "age": f"{q.age_s:,.0f} s",
                    "vs median": f"{q.deviation_pct:+.3f} %",
                }
                for q in live_quote.exchanges
            ]
        )
    with st.expander("Pipeline runs (btc.pipeline_runs)"):
        if not runs:
            st.write("No runs recorded yet.")
        else:
            st.dataframe(runs, hide_index=True, use_container_width=True)
    st.caption(f"Refreshed {now:%H:%M:%S} UTC, every {SETTINGS.dashboard_refresh_s} s · database `{SETTINGS.mongo_db}`")


with left:
    live()
