"""btc-pipeline dashboard: live BTC-USD prices from the pipeline's read model, refreshing itself.

Run: ``streamlit run app.py`` in this folder (the local stack and Docker do this for you).
Reads only MongoDB, configured by ``BTC_MONGO_URI`` / ``BTC_MONGO_DB`` (see .env.example), and only
through the store's read model: one refresh reads a few dozen small documents.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import streamlit as st

from btc_pipeline.alerts import AlertRules, move
from btc_pipeline.bars import BAR_LENGTH
from btc_pipeline.config import ConfigError, load_settings
from btc_pipeline.export import FORMATS, to_bytes
from btc_pipeline.redact import redact_text, redact_uri
from btc_pipeline.store import CONSENSUS, Store, StoreError
from btc_pipeline.timeutil import format_ts
from charts import candles_figure, comparison_figure
from plot import plotly_figure, preload
from view import (
    RANGES,
    Chart,
    HealthPanel,
    HistoryProgress,
    Live,
    load_chart,
    load_health,
    load_history,
    load_live,
    series_choices,
)

st.set_page_config(
    page_title="BTC-USD live",
    page_icon=":chart_with_upwards_trend:",
    layout="wide",
    initial_sidebar_state="collapsed",  # moving averages and page alerts; the main controls are on the page
)
preload()  # the chart's JavaScript loads while the page reads its data

try:
    SETTINGS = load_settings()
except ConfigError as exc:
    st.error(redact_text(f"Configuration error: {exc}"))
    st.stop()
REFRESH_S = SETTINGS.dashboard_refresh_s
MOVE_WINDOW_MIN = SETTINGS.alert_move_window_min  # the pipeline's window: the page measures moves as it does
UNREACHABLE = (
    "MongoDB is not reachable at the configured BTC_MONGO_URI ({uri}, database {db}): is the stack up? "
    "The page retries every {every} s. Details: {error}"
)


# The caches are per process: their arguments name the database, so that two configurations never
# share an entry. Data is cached for one refresh interval; the health panel (holes of 24 h) for 30 s.
@st.cache_resource
def store(uri: str, db: str) -> Store:
    return Store.lazy(uri, db)


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def chart_data(uri: str, db: str, range_name: str, source: str, compare: bool) -> Chart:
    return load_chart(store(uri, db), range_name, source, compare, list(SETTINGS.exchanges), datetime.now(UTC))


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def live_data(uri: str, db: str, source: str) -> Live:
    return load_live(store(uri, db), SETTINGS, source, datetime.now(UTC))


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def history_data(uri: str, db: str) -> HistoryProgress | None:
    return load_history(store(uri, db), datetime.now(UTC))


@st.cache_data(ttl=max(REFRESH_S, 30), show_spinner=False)
def health_data(uri: str, db: str) -> HealthPanel:
    return load_health(store(uri, db), SETTINGS, datetime.now(UTC))


def periods(label: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """The bar counts typed in the sidebar's field ``label`` (``default`` until changed)."""
    text = st.text_input(label, ",".join(map(str, default)))
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        st.sidebar.warning(f"{text!r} is not a list of bar counts; using {','.join(map(str, default))}")
        return default
    return tuple(p for p in values if 2 <= p <= 500)


# --- the controls (they keep their values across the auto-refresh) ------------------------------
st.title("BTC-USD — live pipeline")
range_name = st.segmented_control("Range", list(RANGES), default="1h", key="range") or "1h"
controls = st.columns(2)
source = controls[0].selectbox(
    "Source",
    series_choices(SETTINGS),
    key="source",
    help="consensus: each minute, the median of the exchanges' candles (with failover, the exchange that served "
    "it); an exchange: its own candles (with failover ingest, only the minutes it served)",
)
view_name = controls[1].segmented_control("View", ["Candles", "Compare exchanges"], default="Candles", key="view")
compare = view_name == "Compare exchanges"

with st.sidebar:
    st.header("Settings")
    st.subheader("Moving averages")
    sma_periods = periods("SMA periods (bars)", SETTINGS.sma_periods)
    ema_periods = periods("EMA periods (bars)", SETTINGS.ema_periods)
    st.subheader("Alerts on this page")
    above = st.number_input("Price above (USD, 0 = off)", min_value=0.0, value=SETTINGS.alert_above or 0.0, step=100.0)
    below = st.number_input("Price below (USD, 0 = off)", min_value=0.0, value=SETTINGS.alert_below or 0.0, step=100.0)
    move_pct = st.number_input(
        f"Move over {MOVE_WINDOW_MIN} min (%, 0 = off)",
        min_value=0.0,
        value=SETTINGS.alert_move_pct,
        step=0.5,
        key="move_pct",
    )
    st.caption(
        "The pipeline records alerts from BTC_ALERT_* in .env even when nobody has this page open; "
        "these fields only change what this page warns about. A move is measured as the pipeline does: against "
        f"the consensus {MOVE_WINDOW_MIN} min before the newest reading (BTC_ALERT_MOVE_WINDOW_MIN)."
    )


def header(live: Live, now: datetime) -> None:
    """Consensus price, each exchange's price, the last 24 h, and how old the newest data is."""
    q = live.quote
    newest = live.health.newest
    age = None if newest is None else (now - newest).total_seconds()
    top = st.columns(3)
    top[0].metric(
        "Consensus price",
        f"${q.consensus:,.2f}" if q.consensus else "—",
        help="median of the exchanges' latest readings",
    )
    if live.day is not None:
        top[1].metric("24 h change", f"{live.day.change_pct:+.2f} %", help=f"{source}, from ${live.day.open:,.2f}")
    top[2].metric("Newest data", "—" if age is None else f"{age:,.0f} s ago")
    if live.day is not None:
        day = st.columns(3)
        day[0].metric("24 h high", f"${live.day.high:,.0f}")
        day[1].metric("24 h low", f"${live.day.low:,.0f}")
        day[2].metric("24 h volume", "—" if live.day.volume is None else f"{live.day.volume:,.1f} BTC")
    if live.health.reasons:  # the verdict of /v1/health
        st.warning(f"Stale data: {live.health.reasons[0]}", icon="⚠️")
    if q.exchanges:
        # a Markdown table, not st.table: that one pulls ~1.3 MB of Arrow JavaScript into the first paint
        rows = [f"| {x.source} | {x.price:,.2f} | {x.deviation_pct:+.3f} % | {x.age_s:,.0f} s |" for x in q.exchanges]
        st.markdown("\n".join(["| exchange | price (USD) | vs median | reading age |", "|---|--:|--:|--:|", *rows]))
    missing = [x for x in SETTINGS.exchanges if "tick" not in live.health.by_exchange().get(x, {})]
    if missing and q.exchanges:
        st.caption(f"No reading yet from {', '.join(missing)}.")


def alert_banners(live: Live) -> None:
    """The alerts the pipeline recorded (last 24 h), and this page's own thresholds."""
    price, at = live.quote.consensus, live.quote.newest
    page = []
    if price is not None and above and price > above:
        page.append(f"BTC-USD {price:,.2f} is above {above:,.2f}")
    if price is not None and below and price < below:
        page.append(f"BTC-USD {price:,.2f} is below {below:,.2f}")
    rules = AlertRules(move_pct=move_pct, move_window=timedelta(minutes=MOVE_WINDOW_MIN))
    moved = None if price is None or at is None else move(rules, live.move_reference, price, at)
    if moved is not None:
        page.append(f"{moved.message} (threshold {move_pct:g} %)")
    for text in page:
        st.error(f"Alert (this page): {text}", icon="🔔")
    if live.alerts:
        newest = live.alerts[0]
        more = f" — and {len(live.alerts) - 1} more in 24 h" if len(live.alerts) > 1 else ""
        st.info(f"Recorded by the pipeline at {format_ts(newest.ts)}: {newest.message}{more}", icon="🔔")


def chart(data: Chart) -> None:
    """The chart, and the downloads of what it shows."""
    uirevision = f"{range_name}|{source}|{view_name}"
    if data.lines:
        if all(frame.empty for frame in data.lines.values()):
            st.info("No ticker readings in this range yet.")
            return
        st.markdown(f"**Exchanges compared**: {data.interval} bars of their ticker readings, and their spread (UTC)")
        plotly_figure(
            comparison_figure(data.lines, uirevision=uirevision, bar=BAR_LENGTH[data.interval]), key="compare"
        )
        return
    if data.bars.empty:
        hint = (
            ""
            if source == CONSENSUS
            else f" With failover ingest, {source}'s candles exist only for the minutes it served: choose consensus."
        )
        st.info(f"No {source} candles in this range yet.{hint} Is btc_ingest unpaused in Airflow?")
        return
    st.markdown(f"**BTC-USD {data.interval} candles**, {source}, {format_ts(data.window.start)} → now (UTC)")
    figure = candles_figure(
        data.bars,
        sma_periods=sma_periods,
        ema_periods=ema_periods,
        uirevision=uirevision,
        bar=BAR_LENGTH[data.interval],
    )
    plotly_figure(figure, key="candles")
    count = len(data.bars)
    st.caption(f"{count:,} bar{'' if count == 1 else 's'} of {data.interval}; export them with the buttons at the top")


def export_file(db: Store, chart_range: str, chart_source: str, fmt: str) -> bytes:
    """The chart's range and bar size as a file, read when the button is clicked (not on every refresh)."""
    data = load_chart(db, chart_range, chart_source, False, list(SETTINGS.exchanges), datetime.now(UTC))
    return to_bytes(data.bars, fmt)


def export_buttons() -> None:
    """CSV / Parquet / Excel of what the candle chart shows. Outside the auto-refreshing fragment on
    purpose: Streamlit gives a made-on-click download a new id on every run of its code, and a click
    that lands while the fragment re-runs (every refresh) would fetch the old id and download nothing."""
    if compare:
        return
    row = st.container(horizontal=True, vertical_alignment="center")  # each button as wide as its label
    row.caption("Export this chart:", width="content")
    labels = {"csv": "CSV", "parquet": "Parquet", "xlsx": "Excel"}
    db = store(SETTINGS.mongo_uri, SETTINGS.mongo_db)
    for fmt, (mime, ext) in FORMATS.items():
        row.download_button(
            labels[fmt],
            partial(export_file, db, range_name, source, fmt),
            f"btc-usd_{source}_{range_name}.{ext}",
            mime,
            key=f"export-{fmt}",
            on_click="ignore",
        )


def health_panel(health: HealthPanel) -> None:
    """Freshness per exchange, consumer lag, the last runs, rejects and holes."""
    with st.container(border=True):
        st.caption("Newest candle and tick of each exchange")
        st.dataframe(health.exchanges, hide_index=True)
        lag = (
            f"unknown until the first btc_drain run ends (a run stays while messages arrive, up to "
            f"{SETTINGS.drain_max_seconds:g} s: BTC_DRAIN_MAX_SECONDS)"
            if health.health.consumer_lag is None
            else f"{health.health.consumer_lag:,} message(s)"
        )
        st.write(f"**Consumer lag** (after the last btc_drain run): {lag}")
        st.caption("Last finished run of each DAG (recorded as a run ends; a failed run by its failure callback)")
        st.dataframe(health.runs, hide_index=True)
        if health.rejects_24h:
            listing = ", ".join(f"{reason}: {n}" for reason, n in sorted(health.rejects_24h.items()))
            st.write(f"**Rejected messages** (btc-metrics-dlq, since yesterday 00:00 UTC): {listing}")
        else:
            st.write("**Rejected messages** since yesterday 00:00 UTC: none")
        g = health.gaps
        if g.missing:
            st.write(
                f"**Missing minutes** in the last 24 h: {g.missing_minutes} in {len(g.missing)} range(s) "
                f"(and {g.no_trade_minutes} without trades). btc_heal fills them within the hour; now: "
            )
            st.code(
                f"btc-pipeline backfill --missing --from {format_ts(g.window.start)} --to {format_ts(g.window.end)}"
            )
        else:
            st.write(f"**Missing minutes** in the last 24 h: none ({g.no_trade_minutes} without trades)")
        if health.notifications:
            failed = sum(row["outcome"] != "sent" for row in health.notifications)
            st.caption(f"Last notifications (BTC_NOTIFY_URLS): {failed} of {len(health.notifications)} not delivered")
            st.dataframe(health.notifications, hide_index=True)
        else:
            st.write("**Notifications**: none sent yet (BTC_NOTIFY_URLS; check with `btc-pipeline notify test`)")


def unreachable(exc: StoreError) -> None:
    """Say that MongoDB does not answer, with the URI's password masked (in Docker it is the reader's)."""
    uri = redact_uri(SETTINGS.mongo_uri)
    st.error(redact_text(UNREACHABLE.format(uri=uri, db=SETTINGS.mongo_db, every=REFRESH_S, error=exc)))


@st.fragment(run_every=REFRESH_S)
def live_page() -> None:
    now = datetime.now(UTC)
    try:
        where = (SETTINGS.mongo_uri, SETTINGS.mongo_db)
        live = live_data(*where, source)
        data = chart_data(*where, range_name, source, compare)
    except StoreError as exc:
        unreachable(exc)
        return
    if live.health.newest is None and data.bars.empty and not any(not f.empty for f in data.lines.values()):
        st.info(
            "No data yet: the pipeline has not stored any price. Unpause btc_ingest and btc_drain in Airflow; "
            "`make demo` also backfills the last 24 h on its first start."
        )
        return
    header(live, now)
    alert_banners(live)
    loading = history_data(*where)
    if loading is not None and loading.window.start < data.window.end and data.window.start < loading.window.end:
        st.progress(loading.done / loading.total, text=loading.text)  # the chart's range is still being filled
    chart(data)
    # shown on demand, and read after the chart is on its way: its tables load another ~1 MB of
    # JavaScript (Streamlit's data grid), which would hold up the first chart of a new visitor
    if st.toggle("Pipeline health", key="health", help="freshness per exchange, consumer lag, runs, rejects, holes"):
        try:
            health = health_data(*where)
        except StoreError as exc:
            unreachable(exc)
            return
        health_panel(health)
    st.caption(f"Refreshed {now:%H:%M:%S} UTC, every {REFRESH_S} s · database `{SETTINGS.mongo_db}`")


export_buttons()
live_page()
