"""``btc-pipeline gaps``: the minutes without a candle in a range, merged into ranges."""

from __future__ import annotations

import json
from typing import TextIO

from btc_pipeline.cli.common import EXIT_INCOMPLETE, EXIT_OK, Context
from btc_pipeline.steps.gaps import GapReport, MinuteRange, find_gaps
from btc_pipeline.store import Store
from btc_pipeline.timeutil import format_ts


def describe(r: MinuteRange) -> str:
    """One line of a report: status, range, length, and who said there were no trades."""
    what = "MISSING  " if r.status == "missing" else "NO TRADES"
    why = f"  ({', '.join(r.sources)} said no trades)" if r.status == "no_trades" else ""
    return f"  {what} {format_ts(r.start)} → {format_ts(r.end)}  {r.minutes:>6} min{why}"


def print_report(report: GapReport, out: TextIO) -> None:
    """Print a gap report for people: one line per range, then the totals.

    Args:
        report: The gaps of a range.
        out: Where to write.
    """
    who = report.source or "any exchange"
    out.write(
        f"btc.prices 1-minute candles [{format_ts(report.window.start)}, {format_ts(report.window.end)}) "
        f"from {who}: {report.window.minute_count} minute(s)\n"
    )
    for r in report.ranges:
        out.write(describe(r) + "\n")
    out.write(
        f"present {report.present}, missing {report.missing_minutes} in {len(report.missing)} range(s), "
        f"no trades {report.no_trade_minutes} (the exchange said so)\n"
    )


def run_gaps(ctx: Context, store: Store, as_json: bool) -> int:
    """``btc-pipeline gaps``: print the gaps of the range.

    Args:
        ctx: The range, source, settings and output streams.
        store: The ``btc`` database.
        as_json: Print the report as JSON instead of text.

    Returns:
        0 when the range has no hole (minutes without trades are not holes), 1 otherwise.
    """
    report = find_gaps(store, ctx.window, ctx.settings.symbol, ctx.source)
    if as_json:
        ctx.out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        print_report(report, ctx.out)
    return EXIT_OK if not report.missing else EXIT_INCOMPLETE
