"""The dashboard's Plotly figures: candles with a volume pane and moving averages, and the
exchange comparison (a line per exchange and their spread).

``uirevision`` is what keeps a user's zoom and hidden traces across the auto-refresh: Plotly keeps
the view of a chart whose ``uirevision`` did not change, so it is set from what the user chose
(range, source, view), not from the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from btc_pipeline.indicators import ema, sma, spread

UP, DOWN = "#16a34a", "#dc2626"
AVERAGE_COLOURS = ("#2563eb", "#9333ea", "#ea580c", "#0891b2", "#ca8a04")
#: The bars' time a chart's x axis spans at least, when all it has is one bar.
SHORT_AXIS_BARS = 6
EXCHANGE_COLOURS = {"coinbase": "#2563eb", "kraken": "#7c3aed", "bitstamp": "#16a34a", "binance": "#ca8a04"}
#: Both charts' height, in pixels.
HEIGHT = 560


def candles_figure(
    bars: pd.DataFrame, *, sma_periods: Sequence[int], ema_periods: Sequence[int], uirevision: str, bar: timedelta
) -> go.Figure:
    """Candlesticks over a volume pane sharing the time axis, with SMA and EMA lines of the close.

    Args:
        bars: ``ts, open, high, low, close, volume`` (oldest first).
        sma_periods: Simple moving averages to draw, in bars.
        ema_periods: Exponential moving averages to draw, in bars.
        uirevision: Keeps zoom and legend clicks across refreshes while it stays the same.
        bar: The time one bar spans.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.76, 0.24], vertical_spacing=0.03)
    candles = bars
    if len(bars) == 1:  # Plotly makes a candle as wide as the smallest step between candles: 1 ms for a lone one
        at = bars["ts"].iloc[0]
        candles = pd.concat([pd.DataFrame({"ts": [at - bar]}), bars, pd.DataFrame({"ts": [at + bar]})])
    fig.add_trace(
        go.Candlestick(
            x=candles["ts"],
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name="BTC-USD",
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    averages = [(f"SMA {p}", sma(bars, p, bar)) for p in sma_periods] + [
        (f"EMA {p}", ema(bars, p, bar)) for p in ema_periods
    ]
    for (name, values), colour in zip(averages, AVERAGE_COLOURS * 4, strict=False):
        if values.notna().any():
            fig.add_trace(
                go.Scatter(x=bars["ts"], y=values, name=name, mode="lines", line={"width": 1.3, "color": colour}),
                row=1,
                col=1,
            )
    rising = bars["close"] >= bars["open"]
    fig.add_trace(
        go.Bar(
            x=bars["ts"],
            y=bars["volume"],
            name="volume (BTC)",
            marker_color=[UP if r else DOWN for r in rising],
            width=bar / timedelta(milliseconds=1) * 0.8,  # Plotly's own is 1 ms when there is one bar
            opacity=0.6,
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    _finish(fig, uirevision=uirevision, lower_axis="volume", bar=bar, instants=set(bars["ts"]))
    fig.update_layout(xaxis_rangeslider_visible=False)
    return fig


def comparison_figure(lines: Mapping[str, pd.DataFrame], *, uirevision: str, bar: timedelta) -> go.Figure:
    """A close line per exchange, and below it their spread (``(max - min) / median``, in percent).

    Args:
        lines: Per exchange, its bars (``ts``, ``close``); empty frames are left out.
        uirevision: Keeps zoom and legend clicks across refreshes while it stays the same.
        bar: The time one bar spans.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.04)
    for name, bars in lines.items():
        if bars.empty:
            continue
        colour = EXCHANGE_COLOURS.get(name)
        fig.add_trace(
            go.Scatter(
                x=bars["ts"],
                y=bars["close"],
                name=name,
                mode="lines" if len(bars) > 30 else "lines+markers",  # a line of one bar is not drawn
                line={"width": 1.4, "color": colour},
            ),
            row=1,
            col=1,
        )
    gap = spread(lines)
    fig.add_trace(
        go.Scatter(
            x=gap["ts"],
            y=gap["spread_pct"],
            name="spread %",
            mode="lines" if len(gap) > 30 else "lines+markers",
            fill="tozeroy",
            line={"color": "#64748b"},
        ),
        row=2,
        col=1,
    )
    instants = set(gap["ts"]).union(*(set(b["ts"]) for b in lines.values()))
    _finish(fig, uirevision=uirevision, lower_axis="spread %", bar=bar, instants=instants)
    return fig


def _finish(fig: go.Figure, *, uirevision: str, lower_axis: str, bar: timedelta, instants: set[pd.Timestamp]) -> None:
    """The layout both charts share: price above, ``lower_axis`` below, the legend under them.

    ``instants`` are the times of the bars shown. When there is only one (the first bar of a fresh
    pipeline), Plotly's own range would span a fraction of a second with ticks like
    ``12:00:00.0005``: the axis then spans at least ``SHORT_AXIS_BARS`` bars' time around it.
    """
    fig.update_layout(
        height=HEIGHT,
        margin={"l": 10, "r": 10, "t": 24, "b": 10},
        legend={"orientation": "h", "y": -0.06, "x": 0, "xanchor": "left", "yanchor": "top"},
        uirevision=uirevision,
    )
    fig.update_yaxes(title_text="USD", row=1, col=1)
    fig.update_yaxes(title_text=lower_axis, row=2, col=1)
    if len(instants) == 1:
        # what autorange includes, not a fixed range: uirevision keeps a user's zoom only while the
        # figure's own range setting stays the same, so a fixed range would end it at the second bar
        (at,) = instants
        half = bar * SHORT_AXIS_BARS / 2
        fig.update_xaxes(autorangeoptions={"include": [at - half, at + half]})
