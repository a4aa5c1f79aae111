"""``btc-pipeline rollups rebuild``: rebuild the read model of a range from ``btc.prices``."""

from __future__ import annotations

from btc_pipeline.cli.common import EXIT_OK, Context
from btc_pipeline.cli.progress import Progress, progress_bar
from btc_pipeline.store import Store
from btc_pipeline.timeutil import format_ts


def run_rebuild(ctx: Context, store: Store, *, exact: bool = False) -> int:
    """Rebuild the bars, the consensus and the no-trade partitions of ``ctx.window`` from ``btc.prices``.

    Idempotent, and safe while the drain runs (a rebuild merges with the drain's rules and never
    removes a bar); with ``exact``, the candle bars become exactly what ``btc.prices`` holds (pause
    the drain meanwhile). Progress goes to stderr, the summary to stdout.

    Returns:
        0.
    """
    progress = Progress(ctx.err)

    def report(phase: str, done: int, total: int | None) -> None:
        if phase == "scan":
            progress.update(f"reading btc.prices: {done:,} document(s)")
        else:
            progress.update(f"writing bars {progress_bar(done, total or 0)} day(s)")

    summary = store.rebuild_read_model(ctx.window, progress=report, exact=exact)
    progress.done()
    out = ctx.out
    out.write(f"read model of [{format_ts(ctx.window.start)}, {format_ts(ctx.window.end)}) rebuilt from btc.prices\n")
    out.write(
        f"  read         {summary.scanned:>9,} document(s): {summary.candles:,} candle(s), {summary.ticks:,} tick(s), "
        f"{summary.skipped:,} skipped, in {summary.scan_s:.1f} s\n"
    )
    out.write(f"  days         {summary.days:>9,}   series: {', '.join(sorted(summary.series)) or '-'}\n")
    out.write(
        f"  changed      {summary.minutes_changed:>9,} minute bar(s); {summary.buckets_written:,} bucket(s) written "
        f"in {summary.write_s:.1f} s\n"
    )
    out.write(f"  no trades    {summary.no_trade_minutes:>9,} minute(s) newly copied to their month partitions\n")
    return EXIT_OK
