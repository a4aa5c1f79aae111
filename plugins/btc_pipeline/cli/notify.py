"""``btc-pipeline notify test``: send a test message to every configured notification URL and
print each outcome, with the URL redacted; exit 1 when any failed (2: none configured)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, TextIO

from btc_pipeline.cli.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from btc_pipeline.config import Settings
from btc_pipeline.notify.deliver import deliver
from btc_pipeline.notify.messages import check_message
from btc_pipeline.redact import redact_notify_text

COMMAND = "notify"


def add_notify_command(commands: Any) -> None:
    """``notify test``."""
    notify = commands.add_parser(
        COMMAND,
        help="check the notification channels (BTC_NOTIFY_URLS and the per-topic lists)",
        description="Notifications go to the Apprise URLs of BTC_NOTIFY_URLS (and BTC_NOTIFY_PRICE_URLS, "
        "BTC_NOTIFY_FAILURE_URLS, BTC_NOTIFY_STALE_URLS).",
    )
    actions = notify.add_subparsers(dest="action", required=True, metavar="{test}")
    test = actions.add_parser(
        "test",
        help="send a test message to every configured URL and print each outcome",
        description="Sends one test message to each configured URL (retried like every notification), prints "
        "each outcome with the URL redacted, and records it in btc.notifications when MongoDB (BTC_MONGO_URI) "
        "answers. Exit code 0: every channel got it; 1: one failed; 2: no URL is configured.",
    )
    test.add_argument("--no-record", action="store_true", help="do not record the deliveries in btc.notifications")


def run_notify(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``notify test``; returns the exit code."""
    urls = settings.all_notify_urls
    if not urls:
        err.write(
            "btc-pipeline notify test: no notification URL is configured: set BTC_NOTIFY_URLS in .env "
            "(e.g. BTC_NOTIFY_URLS=jsons://hooks.example.com/btc; README, 'Notifications')\n"
        )
        return EXIT_USAGE
    store = None if args.no_record else _store_or_none(settings.mongo_uri, settings.mongo_db, err)
    deliveries = deliver(check_message(datetime.now(UTC)), urls, store)
    for d in deliveries:
        tries = f"{d.attempts} try" if d.attempts == 1 else f"{d.attempts} tries"
        detail = f": {redact_notify_text(d.detail, urls)}" if d.detail else ""
        out.write(f"{d.outcome:<11} {d.channel} ({tries}){detail}\n")
    failed = sum(not d.ok for d in deliveries)
    out.write(f"{len(deliveries) - failed} of {len(deliveries)} channel(s) received the test message\n")
    return EXIT_INCOMPLETE if failed else EXIT_OK


def _store_or_none(uri: str, db: str, err: TextIO) -> Any:
    from btc_pipeline.store import Store, StoreError

    try:
        return Store.connect(uri, db, timeout_ms=2000)
    except StoreError as exc:
        err.write(f"note: the deliveries are not recorded in btc.notifications: {exc}\n")
        return None
