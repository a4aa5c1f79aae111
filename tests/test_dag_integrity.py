"""DAG integrity, modelled on Airflow's own test_example_dags: every file in dags/ parses without
import errors, defines a DAG, runs no database query and fetches no connection while parsed, and
every DAG follows the house rules (tags, retries, explicit timetable, doc_md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import event

DAGS = Path(__file__).resolve().parents[1] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def guarded_parse():
    """Parse each DAG file with SQL and connection look-ups trapped."""
    import airflow.settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook

    queries: list[str] = []

    def count(conn, cursor, statement, *args):
        queries.append(statement)

    def no_connections(*args, **kwargs):
        raise AssertionError(f"a connection was fetched at parse time: {args}")

    engine = airflow.settings.engine
    event.listen(engine, "before_cursor_execute", count)
    original = BaseHook.get_connection
    BaseHook.get_connection = classmethod(no_connections)  # type: ignore[method-assign]
    try:
        bags = {f.name: DagBag(dag_folder=str(f)) for f in DAG_FILES}
    finally:
        BaseHook.get_connection = original  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", count)
    return bags, queries


def test_there_are_dag_files():
    assert {f.stem for f in DAG_FILES} >= {"btc_ingest", "btc_drain"}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_file_defines_one_dag_named_like_the_file(guarded_parse, dag_file):
    bags, _ = guarded_parse
    bag = bags[dag_file.name]
    assert not bag.import_errors, bag.import_errors
    assert list(bag.dags) == [dag_file.stem]


def test_the_dag_files_are_the_dag_ids_everyone_else_uses():
    """The files are named after the ids of :mod:`btc_pipeline.dag_ids`, and each passes its constant."""
    from btc_pipeline.dag_ids import DAG_IDS

    assert sorted(f.stem for f in DAG_FILES) == sorted(DAG_IDS)
    for dag_file in DAG_FILES:
        dag_id = next(k.value for k in dag_call(dag_file).keywords if k.arg == "dag_id")
        assert isinstance(dag_id, ast.Name), f"{dag_file.name}: dag_id= names its constant in btc_pipeline.dag_ids"


@pytest.mark.parametrize("dag_id", ["btc_backfill", "btc_heal"])
def test_the_backfill_task_ids_the_cli_follows_are_the_dags(guarded_parse, dag_id):
    from btc_pipeline.dag_ids import CHUNK_TASK, PLAN_TASK, SUMMARIZE_TASK

    dag = guarded_parse[0][f"{dag_id}.py"].dags[dag_id]
    assert {PLAN_TASK, CHUNK_TASK, SUMMARIZE_TASK} <= set(dag.task_ids)


def test_no_database_query_while_parsing(guarded_parse):
    _, queries = guarded_parse
    assert queries == []


def dag_call(dag_file: Path) -> ast.Call:
    """The file's one ``@dag(...)`` / ``DAG(...)`` call."""
    calls = [
        node
        for node in ast.walk(ast.parse(dag_file.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("dag", "DAG")
    ]
    assert len(calls) == 1, f"{dag_file.name} has {len(calls)} dag(...) calls"
    return calls[0]


#: What every DAG must *set* (Airflow has a default for each, which would hide an omission).
REQUIRED_DAG_ARGS = ("schedule", "start_date", "catchup", "max_active_runs", "tags", "doc_md", "default_args")
REQUIRED_DEFAULT_ARGS = ("retries", "retry_delay")


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_every_dag_sets_its_schedule_runs_and_retries_on_purpose(dag_file):
    call = dag_call(dag_file)
    given = {k.arg: k.value for k in call.keywords}
    missing = [name for name in REQUIRED_DAG_ARGS if name not in given]
    assert not missing, f"{dag_file.name}: dag(...) does not set {missing}"
    default_args = given["default_args"]
    if isinstance(default_args, ast.Call):  # schedules.retry_args(retries, delay, max_delay): all required
        assert ast.unparse(default_args.func) == "schedules.retry_args", f"{dag_file.name}: {ast.unparse(default_args)}"
        assert len(default_args.args) == 3, f"{dag_file.name}: retry_args takes the retries and both delays"
        return
    assert isinstance(default_args, ast.Dict), f"{dag_file.name}: default_args: a literal dict or retry_args(...)"
    keys = {ast.literal_eval(k) for k in default_args.keys if k is not None}
    lacking = set(REQUIRED_DEFAULT_ARGS) - keys
    assert not lacking, f"{dag_file.name}: default_args lacks {lacking}"


#: Tasks not retried on purpose: a ticker reading cannot be had again later.
NOT_RETRIED = {("btc_ingest", "stream_ticks")}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_house_rules(guarded_parse, dag_file):
    from airflow.sdk.bases.timetable import BaseTimetable

    dag = guarded_parse[0][dag_file.name].dags[dag_file.stem]
    assert dag.tags, "every DAG has tags"
    assert dag.doc_md and dag.doc_md.strip().startswith(f"# {dag.dag_id}"), "doc_md is the file's Markdown docstring"
    assert dag.start_date is not None and dag.start_date.utcoffset().total_seconds() == 0
    assert isinstance(dag.timetable, BaseTimetable)
    for task in dag.tasks:
        assert task.retries >= 1 or (dag.dag_id, task.task_id) in NOT_RETRIED, f"{task.task_id} has no retries"
        assert task.on_failure_callback, f"{task.task_id}: its failure would not be recorded for the dashboard"
        assert task.execution_timeout is not None, f"{task.task_id} has no execution_timeout"


def test_ingest_owns_a_real_one_minute_window(guarded_parse):
    """Airflow 3 turns a plain cron into a trigger timetable (start == end); ingest must not."""
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = guarded_parse[0]["btc_ingest.py"].dags["btc_ingest"]
    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(
        run_after=pendulum.datetime(2026, 11, 24, 10, 0, 30, tz="UTC")
    )
    assert (interval.end - interval.start).total_seconds() == 60


def test_drain_never_overlaps(guarded_parse):
    assert guarded_parse[0]["btc_drain.py"].dags["btc_drain"].max_active_runs == 1


def test_every_producer_of_the_topic_starts_the_drain(guarded_parse):
    """The drain is scheduled on the topic's asset (or every 30 s), and every task that produces to
    the topic declares that asset as an outlet, so that its success starts a drain at once."""
    from airflow.sdk import AssetOrTimeSchedule

    bags = guarded_parse[0]
    drain = bags["btc_drain.py"].dags["btc_drain"]
    assert isinstance(drain.timetable, AssetOrTimeSchedule)
    asset = drain.timetable.asset_condition
    assert asset.uri == "kafka://btc_kafka/btc-metrics" and asset.name == "btc-metrics"
    producers = {
        ("btc_ingest", "produce_window"),
        ("btc_ingest", "stream_ticks"),
        ("btc_backfill", "fetch_and_produce"),
        ("btc_heal", "fetch_and_produce"),
    }
    for dag_id, task_id in producers:
        task = bags[f"{dag_id}.py"].dags[dag_id].get_task(task_id)
        assert asset in task.outlets, f"{dag_id}.{task_id} produces to the topic but does not say so"
    others = [
        (dag.dag_id, t.task_id)
        for bag in bags.values()
        for dag in bag.dags.values()
        for t in dag.tasks
        if asset in t.outlets and (dag.dag_id, t.task_id) not in producers
    ]
    assert others == []


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_every_task_tells_the_failure_channels(guarded_parse, dag_file):
    """Each task's failure callbacks include the pipeline's notifier (a no-op without a URL), and
    without a failure URL the DAG has no success callback: the scheduler asks the DAG processor for
    nothing more than before notifications existed."""
    from btc_pipeline.tasks.notifier import PipelineNotifier

    dag = guarded_parse[0][dag_file.name].dags[dag_file.stem]
    for task in dag.tasks:
        callbacks = (
            task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        )
        assert any(isinstance(c, PipelineNotifier) and c.event == "failed" for c in callbacks), task.task_id
    assert not dag.on_success_callback


def test_a_failure_url_gives_every_dag_the_recovery_notifier():
    from btc_pipeline.config import load_settings
    from btc_pipeline.tasks import schedules

    assert schedules.on_success(load_settings({})) is None
    notifier = schedules.on_success(load_settings({"BTC_NOTIFY_URLS": "json://127.0.0.1:9/x"}))
    assert notifier is not None and notifier.event == "succeeded"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_every_dag_file_wires_the_recovery_notifier(dag_file):
    assert "on_success_callback=schedules.on_success(" in dag_file.read_text(), dag_file.name
