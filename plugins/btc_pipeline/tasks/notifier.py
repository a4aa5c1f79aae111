"""The Airflow notifier of every DAG: failed tasks and recovered runs go to ``BTC_NOTIFY_URLS``
(or ``BTC_NOTIFY_FAILURE_URLS``) through the pipeline's one delivery path
(:mod:`btc_pipeline.notify`), so that they are grouped per DAG, retried with a bound, redacted
and recorded in ``btc.notifications`` like every other message.

- ``PipelineNotifier("failed")``: a task's ``on_failure_callback`` (runs in the task's process
  after its last try failed): the DAG, the run, the task, the first line of the error, the link to
  the task's log in the Airflow UI (``BTC_AIRFLOW_UI_URL``).
- ``PipelineNotifier("succeeded")``: the DAG's ``on_success_callback`` (runs in the DAG processor):
  the recovery message when the DAG was failing.

Neither ever raises: a notification must not hide, or add to, the task's own outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from airflow.sdk import BaseNotifier

from btc_pipeline.config import load_settings
from btc_pipeline.notify import events
from btc_pipeline.notify.messages import first_line
from btc_pipeline.redact import redact_notify_text
from btc_pipeline.tasks import hooks

log = logging.getLogger(__name__)


class PipelineNotifier(BaseNotifier):  # type: ignore[misc]
    """Tells the failure channels that a task failed (``"failed"``) or that a DAG run succeeded
    after failures (``"succeeded"``). A no-op without a failure URL."""

    def __init__(self, event: Literal["failed", "succeeded"]) -> None:
        super().__init__()
        self.event = event

    def notify(self, context: Mapping[str, Any]) -> None:
        settings = load_settings()
        urls = settings.notify_targets("failure")
        if not urls:
            return
        try:
            with hooks.store(settings) as store:
                if self.event == "failed":
                    ti = context["ti"]
                    events.task_failed(
                        store,
                        settings,
                        dag_id=ti.dag_id,
                        run_id=ti.run_id,
                        task_id=ti.task_id,
                        error=redact_notify_text(first_line(context.get("exception")), settings.all_notify_urls),
                        now=datetime.now(UTC),
                        map_index=getattr(ti, "map_index", -1),
                        try_number=getattr(ti, "try_number", 0) or 0,
                    )
                else:
                    dag_id, run_id = context["dag"].dag_id, str(context["run_id"])
                    events.run_succeeded(store, settings, dag_id=dag_id, run_id=run_id, now=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            log.warning("notification of %s not sent: %s", self.event, redact_notify_text(str(exc), urls))
