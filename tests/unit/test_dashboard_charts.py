"""The dashboard's figures, built from the real Bitstamp minute series, and the Plotly bundle that
draws them in the page (``dashboard/static/``, a partial bundle: it draws only the trace types it
was built with, so a figure that uses another one would be a blank chart in the browser)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import plotly
import pytest

from dashboard import plot
from dashboard.charts import candles_figure, comparison_figure

STATIC = Path(__file__).resolve().parents[2] / "dashboard" / "static"


@pytest.fixture(scope="module")
def bars(bitstamp_minutes) -> pd.DataFrame:
    return bitstamp_minutes


@pytest.fixture(scope="module")
def bundle() -> str:
    return (STATIC / plot.BUNDLE).read_text(encoding="utf-8")


def bundle_trace_types(bundle: str) -> set[str]:
    """The trace types the bundle registers (each trace module says ``moduleType:"trace",name:"..."``)."""
    return set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))


MINUTE = timedelta(minutes=1)


def figures(bars: pd.DataFrame) -> list:
    three = {
        "bitstamp": bars,
        "coinbase": bars.assign(close=bars["close"] * 1.0004),
        "kraken": bars.assign(close=bars["close"] * 0.9997),
    }
    return [
        candles_figure(bars, sma_periods=[20, 50], ema_periods=[12], uirevision="1h|consensus|candles", bar=MINUTE),
        comparison_figure(three, uirevision="1h|consensus|compare", bar=MINUTE),
    ]


def test_the_bundle_is_the_plotly_js_of_the_python_package(bundle):
    version = plotly.offline.get_plotlyjs_version()
    assert f"plotly-finance-{version}.min.js" == plot.BUNDLE
    assert f"plotly.js (finance - minified) v{version}" in bundle[:200]
    assert "window.Plotly = Plotly" in bundle  # the page's loader waits for this global


def test_the_bundle_matches_its_recorded_checksum(bundle):
    readme = (STATIC / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((STATIC / plot.BUNDLE).read_bytes()).hexdigest()
    assert f"sha256 {digest}" in readme, "static/README.md must record the bundle's checksum (make plotly-bundle)"


def test_every_trace_the_dashboard_draws_is_in_the_bundle(bars, bundle):
    available = bundle_trace_types(bundle)
    assert {"candlestick", "scatter", "bar"} <= available  # the regex still reads the bundle
    used = {trace.type for fig in figures(bars) for trace in fig.data}
    assert used == {"candlestick", "scatter", "bar"}
    assert used <= available


def test_the_figures_follow_the_page_theme_and_keep_their_view(bars):
    for fig in figures(bars):
        layout = json.loads(plot.themed(fig).to_json())["layout"]
        assert not layout.get("template")  # no white template painted over the dark theme
        assert layout["paper_bgcolor"] == layout["plot_bgcolor"] == "rgba(0,0,0,0)"
        assert "color" not in layout.get("font", {})  # the page sets it, from its theme
        assert layout["uirevision"].startswith("1h|consensus|")
        assert layout["yaxis"]["automargin"] and layout["xaxis2"]["automargin"]


def x_range(fig) -> list[pd.Timestamp] | None:
    """What the time axis is made to include (never a fixed range: that would end a user's zoom when
    the figure's range changes, see uirevision)."""
    layout = json.loads(fig.to_json())["layout"]
    assert not any("range" in layout[axis] for axis in ("xaxis", "xaxis2"))
    ranges = [layout[axis].get("autorangeoptions", {}).get("include") for axis in ("xaxis", "xaxis2")]
    assert ranges[0] == ranges[1], "the two panes share their time axis"
    return None if ranges[0] is None else [pd.Timestamp(t, tz="UTC") for t in ranges[0]]


def test_one_bar_gets_an_axis_of_a_few_bars_around_it(bars):
    """A fresh pipeline's first candle: Plotly alone would span a fraction of a second."""
    one = bars.head(1)
    at = one["ts"].iloc[0]
    for fig in (
        candles_figure(one, sma_periods=[20], ema_periods=[12], uirevision="u", bar=MINUTE),
        comparison_figure({"bitstamp": one, "kraken": one}, uirevision="u", bar=MINUTE),
    ):
        start, end = x_range(fig)
        assert start < at < end and end - start == 6 * MINUTE
    hourly = candles_figure(one, sma_periods=[], ema_periods=[], uirevision="u", bar=timedelta(hours=1))
    start, end = x_range(hourly)
    assert end - start == timedelta(hours=6)
    candle = next(trace for trace in hourly.data if trace.type == "candlestick")
    assert list(pd.to_datetime(candle.x, utc=True) - at) == [-timedelta(hours=1), timedelta(0), timedelta(hours=1)]
    assert pd.isna(candle.open[0]) and pd.isna(candle.close[2])  # empty neighbours: the candle is a bar wide
    volume = next(trace for trace in hourly.data if trace.type == "bar")
    assert volume.width == 0.8 * 3_600_000  # ms: Plotly alone draws a lone bar 1 ms wide


def test_more_bars_keep_plotlys_own_range(bars):
    for fig in figures(bars) + figures(bars.head(2)):
        assert x_range(fig) is None
