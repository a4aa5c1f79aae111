"""btc-pipeline dashboard: live BTC-USD prices from MongoDB (``btc.prices``), refreshing itself.

Run: ``streamlit run dashboard/app.py`` (the local stack and Docker do this for you).
Reads only MongoDB, configured by ``BTC_MONGO_URI`` / ``BTC_MONGO_DB`` (see .env.example).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from btc_pipeline.bars import CONSENSUS, consensus, pick_resample_rule, resample_candles
from btc_pipeline.config import ConfigError, load_settings
from btc_pipeline.store import Store, StoreError

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
}


@st.cache_resource
def store() -> Store:
    return Store.lazy(SETTINGS.mongo_uri, SETTINGS.mongo_db)


@st.cache_data(ttl=SETTINGS.dashboard_refresh_s, show_spinner=False)
def fetch(span_s: int, source: str) -> tuple[Any, Any, Any, Any]:
    now = datetime.now(UTC)
    candles = store().candles(now - timedelta(seconds=span_s), source=None if source == CONSENSUS else source)
    if source == CONSENSUS:  # the median of the exchanges, minute by minute: one series, whoever served
        candles = consensus(candles)
    return (
        candles,
        store().latest_tick(),
        store().recent_runs(),
        store().latest_ticks_by_source(now - timedelta(minutes=10)),
    )


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
        candles, tick, runs, exchanges = fetch(int(span.total_seconds()), source)
    except StoreError as exc:
        st.error(f"MongoDB is not reachable at the configured BTC_MONGO_URI: {exc}")
        return
    now = datetime.now(UTC)
    c1, c2, c3, c4 = st.columns(4)
    if tick:
        age = (now - tick["ts"]).total_seconds()
        c1.metric("Last price", f"${tick['price']:,.2f}", help=f"{tick['source']} tick at {tick['ts']:%H:%M:%S} UTC")
        c2.metric("Tick age", f"{age:,.0f} s")
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
        rule = pick_resample_rule(span)
        bars = resample_candles(candles, rule)
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
    if not exchanges.empty:
        st.caption("Latest ticker per exchange (last 10 min) and its deviation from their median")
        st.table(
            exchanges.assign(
                price=exchanges["price"].map("${:,.2f}".format),
                ts=exchanges["ts"].map(lambda ts: f"{ts:%H:%M:%S}"),
                deviation_pct=exchanges["deviation_pct"].map("{:+.3f} %".format),
            ).rename(columns={"ts": "trade time (UTC)", "deviation_pct": "vs median"})
        )
    with st.expander("Pipeline runs (btc.pipeline_runs)"):
        if runs.empty:
            st.write("No runs recorded yet.")
        else:
            st.dataframe(runs, hide_index=True, use_container_width=True)
    st.caption(f"Refreshed {now:%H:%M:%S} UTC, every {SETTINGS.dashboard_refresh_s} s · database `{SETTINGS.mongo_db}`")


with left:
    live()
