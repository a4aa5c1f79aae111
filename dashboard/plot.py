"""Draws the dashboard's Plotly figures with Plotly's finance bundle instead of ``st.plotly_chart``.

Why: a new visitor's first chart waited on Streamlit's Plotly chunk, 4.7 MB of JavaScript (all of
plotly.js and its React wrapper) that the browser fetches only when the first chart arrives and then
compiles for ~0.8 s on the main thread. The charts here use four trace types (candlestick, bar,
scatter, filled scatter), all in plotly.js's official *finance* partial bundle: 1.2 MB, the same
plotly.js version as the Python package's own (``static/README.md`` says where it comes from).

How: the bundle is served by Streamlit's static file serving (``server.enableStaticServing`` in
``.streamlit/config.toml``, ``static/`` next to ``app.py``), and a small ``st.components.v2``
component (no iframe; styles not isolated, so Plotly's modebar CSS in ``<head>`` applies) loads it
once per page and draws a figure with ``Plotly.react`` into the same element on every refresh, which
is what lets ``layout.uirevision`` keep a user's zoom and hidden traces across the auto-refresh.
:func:`preload` mounts the same component without a figure at the top of the page, so that the
bundle downloads and compiles while the page's reads run, not after the data arrived.

The page's light or dark theme: the figures carry no colours of their own for paper, plot area and
text (transparent backgrounds, grey grid lines); the component sets the text's colour and font to
the page's own, read from the element the chart sits in on every draw. Streamlit runs a component
again when the viewer switches the theme, so the chart follows at once (the browser test checks it).
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

#: The vendored bundle under ``static/``: keep the version in step with the Python ``plotly``
#: package's plotly.js (``plotly.offline.get_plotlyjs_version()``), as ``tests/unit`` checks.
BUNDLE = "plotly-finance-3.7.0.min.js"
#: Where Streamlit serves ``static/``, relative to the page (``app/static/``): the page resolves it
#: against its own address, as Streamlit's own scripts are, so it holds under ``server.baseUrlPath``
#: and behind a proxy that serves the dashboard under a path of its own.
BUNDLE_URL = f"app/static/{BUNDLE}"

_JS = """
const loading = {};

function loadPlotly(relative) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  const src = new URL(relative, document.baseURI).href;  // the page's address, whatever its prefix
  if (!loading[src]) {
    loading[src] = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => window.Plotly ? resolve(window.Plotly) : reject(new Error(`no Plotly in ${src}`));
      script.onerror = () => { delete loading[src]; script.remove(); reject(new Error(`could not load ${src}`)); };
      document.head.appendChild(script);
    });
  }
  return loading[src];
}

function pageFont(element) {
  const style = getComputedStyle(element);
  return { color: style.color, family: style.fontFamily };
}

function showProblem(parentElement, text) {
  let note = parentElement.querySelector(":scope > div.btc-plotly-problem");
  if (!note) {
    note = document.createElement("div");
    note.className = "btc-plotly-problem";
    note.setAttribute("role", "alert");
    note.style.cssText = "padding: 0.75rem 1rem; border-radius: 0.5rem; background: rgba(250, 202, 43, 0.2);";
    parentElement.appendChild(note);
  }
  note.textContent = text;
}

export default async function ({ data, parentElement }) {
  let Plotly;
  try {
    Plotly = await loadPlotly(data.bundle);
  } catch (error) {
    if (data.figure) {
      showProblem(parentElement, `The chart cannot be drawn: ${error.message}. The dashboard must be started in ` +
        "its folder (dashboard/.streamlit/config.toml turns on static file serving) with the bundle that " +
        "dashboard/plot.py names in dashboard/static/ (make plotly-bundle). The page tries again on a later refresh.");
    }
    return;
  }
  parentElement.querySelector(":scope > div.btc-plotly-problem")?.remove();
  if (!data.figure) return;  // preload: the bundle only
  let chart = parentElement.querySelector(":scope > div.btc-plotly");
  if (!chart) {
    chart = document.createElement("div");
    chart.className = "btc-plotly";
    chart.setAttribute("data-testid", "btc-plotly-chart");
    parentElement.appendChild(chart);
  }
  // Plotly's "responsive" follows the window only: follow the page's own layout too (the sidebar)
  if (!chart.resizer) {
    chart.resizer = new ResizeObserver(() => {
      if (chart.isConnected && chart._fullLayout) Plotly.Plots.resize(chart);
    });
    chart.resizer.observe(parentElement instanceof ShadowRoot ? parentElement.host : parentElement);
  }
  const release = () => {
    chart.resizer?.disconnect();
    Plotly.purge(chart);
  };
  try {
    const figure = JSON.parse(data.figure);
    const layout = { ...figure.layout, font: { ...(figure.layout.font || {}), ...pageFont(parentElement) } };
    await Plotly.react(chart, figure.data, layout, data.config);
  } catch (error) {
    release();
    chart.remove();
    showProblem(parentElement, `The chart could not be drawn: ${error.message}. It is drawn again on a later refresh.`);
    return;
  }
  // Streamlit calls this function again, on the same element, when the data or the theme change
  // (the zoom is kept); this cleanup runs when the chart leaves the page (another view was chosen).
  return () => {
    setTimeout(() => { if (!chart.isConnected) release(); }, 0);
  };
}
"""

_component = st.components.v2.component("btc_plotly", js=_JS, isolate_styles=False)

#: Plotly's own toolbar, without the logo and the "edit in Chart Studio" link.
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def themed(fig: go.Figure) -> go.Figure:
    """The figure without Plotly's default white template: transparent backgrounds and grey grid
    lines read on both the light and the dark theme (the page sets the text's colour and font)."""
    grid = "rgba(128, 128, 128, 0.22)"
    fig.update_layout(
        template=None,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        modebar={"bgcolor": "rgba(0,0,0,0)", "color": "rgba(128, 128, 128, 0.7)"},
    )
    axes = {"gridcolor": grid, "zerolinecolor": grid, "linecolor": grid, "showgrid": True, "automargin": True}
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    return fig


def preload() -> None:
    """Start loading the bundle now (call it first thing on the page): it compiles while the page
    reads its data. Draws nothing."""
    _component(key="plotly-preload", data={"bundle": BUNDLE_URL}, height=0)


def plotly_figure(fig: go.Figure, *, key: str) -> None:
    """Draw ``fig`` in the page; the same ``key`` on the next refresh redraws it in place.

    Args:
        fig: The figure (its ``layout.uirevision`` decides whether a user's zoom is kept).
        key: Names the chart on the page.
    """
    _component(
        key=key,
        data={"bundle": BUNDLE_URL, "figure": themed(fig).to_json(), "config": _CONFIG},
        height="content",
    )
