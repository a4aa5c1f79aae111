"""What the pipeline says, and to whom: the messages of each event, built from plain values (no
I/O), so that their content is tested without a receiver.

Every message names its *topic* (which URL list it goes to, see
:meth:`btc_pipeline.config.Settings.notify_targets`), its *kind* (what happened) and its *key* (what
it is about: an alert's id, a DAG, the data), which the delivery records keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

from btc_pipeline.alerts import Alert
from btc_pipeline.timeutil import format_ts

Topic = Literal["price", "failure", "stale", "test"]
Level = Literal["info", "success", "warning", "failure"]

#: How much of an error's first line a message quotes.
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Message:
    """One notification: a title and a Markdown body, with what it is about."""

    topic: Topic
    kind: str
    key: str
    title: str
    body: str
    level: Level = "info"


def first_line(error: str | BaseException | None) -> str:
    """The first non-empty line of an error (its class name when it has no text), cut to
    :data:`MAX_ERROR_CHARS`; ``""`` when there is none."""
    if error is None:
        return ""
    text = str(error)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if isinstance(error, BaseException):
        line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def duration_text(span: timedelta) -> str:
    """A span as people say it: ``45 s``, ``14 min``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = max(0, int(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def task_log_url(ui_url: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 0) -> str:
    """The Airflow 3 UI's page of a task instance's log (the address Airflow's own ``log_url`` makes)."""
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    attempt = f"?try_number={try_number}" if try_number > 0 else ""
    run = quote(run_id, safe="")
    return f"{ui_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{run}/tasks/{quote(task_id)}{mapped}{attempt}"


def rule_text(alert: Alert) -> str:
    """The rule an alert fired on, as configured: ``BTC_ALERT_ABOVE = 100,000.00``."""
    if alert.kind in ("above", "below"):
        return f"BTC_ALERT_{alert.kind.upper()} = {alert.threshold:,.2f}"
    return f"BTC_ALERT_MOVE_PCT = {alert.threshold:g} % ({alert.kind.replace('_', ' ')})"


def price_alert(alert: Alert, dashboard_url: str) -> Message:
    """The message of a price alert ``btc_drain`` recorded: the rule, the consensus price, its time, the dashboard."""
    body = "\n".join(
        [
            alert.message,
            "",
            f"- rule: {rule_text(alert)}",
            f"- consensus price: {alert.price:,.2f} USD",
            f"- at: {format_ts(alert.ts)}",
            f"- dashboard: {dashboard_url}",
        ]
    )
    return Message("price", "price_alert", alert.id, f"BTC-USD price alert: {alert.message}", body, "warning")


def run_failed(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    error: str,
    log_url: str,
    failures: int,
    since: datetime,
    reminder: bool,
) -> Message:
    """A failed run of ``dag_id`` (``reminder``: it is still failing, ``failures`` times since ``since``)."""
    head = f"{dag_id} is still failing" if reminder else f"{dag_id} failed"
    lines = [
        f"- DAG: {dag_id}",
        f"- run: {run_id}",
        f"- failed task: {task_id}",
        f"- error: {error or '(no message)'}",
        f"- task log: {log_url}",
    ]
    if reminder:
        lines.append(f"- failing since {format_ts(since)}: {failures} failed task(s) so far")
    return Message("failure", "reminder" if reminder else "failure", f"dag:{dag_id}", head, "\n".join(lines), "failure")


def run_recovered(*, dag_id: str, run_id: str, since: datetime, now: datetime, failures: int) -> Message:
    """``dag_id`` succeeded again after failing since ``since``."""
    body = "\n".join(
        [
            f"- DAG: {dag_id}",
            f"- run: {run_id} succeeded",
            f"- it had failed {failures} time(s) since {format_ts(since)} ({duration_text(now - since)})",
        ]
    )
    return Message("failure", "recovered", f"dag:{dag_id}", f"{dag_id} recovered", body, "success")


def data_stale(*, newest: datetime | None, age_s: float | None, stale_after_s: int, dashboard_url: str) -> Message:
    """No new observation for longer than ``BTC_STALE_AFTER_S``."""
    seen = "no observation stored yet" if newest is None else f"newest observation {format_ts(newest)}"
    age = "" if age_s is None else f", {duration_text(timedelta(seconds=age_s))} old"
    body = "\n".join(
        [
            f"- {seen}{age}",
            f"- limit: BTC_STALE_AFTER_S = {stale_after_s} s",
            "- is btc_ingest running and btc_drain green in Airflow?",
            f"- dashboard: {dashboard_url}",
        ]
    )
    return Message("stale", "stale", "data", "BTC-USD data is stale", body, "warning")


def data_fresh(*, since: datetime, now: datetime, newest: datetime | None, dashboard_url: str) -> Message:
    """New observations arrive again after the data was stale since ``since``."""
    after = duration_text(now - since)
    body = "\n".join(
        [
            f"- stale since {format_ts(since)}",
            f"- newest observation {format_ts(newest) if newest else '-'}",
            f"- dashboard: {dashboard_url}",
        ]
    )
    return Message("stale", "fresh", "data", f"BTC-USD data fresh again after {after}", body, "success")


def housekeeping_failed(*, error: str, retention_days: int, now: datetime) -> Message:
    """A pass of ``btc-pipeline housekeeping`` failed: Airflow's old logs and runs stay until one succeeds."""
    body = "\n".join(
        [
            f"- error: {error or '(no message)'}",
            f"- at: {format_ts(now)}",
            f"- Airflow's task logs and runs older than {retention_days} day(s) stay until a pass succeeds",
            "- the service's log says more (docker compose logs airflow-housekeeping); docs/operations.md, "
            "'Housekeeping'",
        ]
    )
    return Message("failure", "failure", "housekeeping", "btc-pipeline housekeeping failed", body, "failure")


def check_message(now: datetime) -> Message:
    """What ``btc-pipeline notify test`` sends."""
    body = f"A test message from btc-pipeline at {format_ts(now)}: this channel receives its notifications."
    return Message("test", "test", "test", "btc-pipeline test message", body, "info")
