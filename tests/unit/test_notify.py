"""Notifications without services: when a lasting problem is worth a message, what each message
says, that URLs never show, that no URL means nothing sent nor read, and delivery against a local
HTTP server (retries, outcomes, the CLI's report)."""

from __future__ import annotations

import http.server
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from btc_pipeline.alerts import Alert
from btc_pipeline.cli import main
from btc_pipeline.config import ConfigError, load_settings
from btc_pipeline.notify import episodes, events, messages
from btc_pipeline.notify.deliver import WORST_SEND_S, Outbox, deliver, send
from btc_pipeline.redact import HARMLESS_PARTS, MASK, redact_notify_text, redact_notify_url

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FAST = {"wait_min_s": 0.01, "wait_max_s": 0.02}


# --- episodes: one message, reminders at most every `repeat`, one end ------------------------------


class EpisodeStore:
    """The store's episodes in memory (its compare-and-set under a lock is the integration tests' part)."""

    def __init__(self, state: dict[str, episodes.Episode] | None = None) -> None:
        self.state = dict(state or {})

    def episode(self, key: str) -> episodes.Episode:
        return self.state.get(key, episodes.Episode())

    def update_episode(self, key: str, change: Any) -> Any:
        said, self.state[key] = change(self.episode(key))
        return said


def test_a_failing_spell_is_one_message_then_reminders_then_its_end():
    repeat = timedelta(minutes=60)
    said, ep = episodes.report(episodes.Episode(), T0, repeat)
    assert said == "first" and ep == episodes.Episode(True, T0, T0, 1)
    said, ep = episodes.report(ep, T0 + timedelta(minutes=59), repeat)
    assert said is None and ep.count == 2
    said, ep = episodes.report(ep, T0 + timedelta(minutes=60), repeat)
    assert said == "reminder" and ep.last_sent == T0 + timedelta(minutes=60) and ep.since == T0
    store = EpisodeStore({"k": ep})
    assert events._end(store, "k") == ep and store.episode("k") == episodes.Episode()  # type: ignore[arg-type]
    assert events._end(store, "k") is None  # type: ignore[arg-type]


def test_without_repeat_there_is_no_reminder():
    _, ep = episodes.report(episodes.Episode(), T0, None, since=T0 - timedelta(minutes=3))
    assert ep.since == T0 - timedelta(minutes=3)
    assert episodes.report(ep, T0 + timedelta(days=3), None)[0] is None


def test_an_episode_survives_its_document():
    _, ep = episodes.report(episodes.Episode(), T0, None)
    assert episodes.Episode.from_document(ep.to_dict()) == ep
    assert episodes.Episode.from_document(None) == episodes.Episode()


@given(
    st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=7200)), max_size=60),
    st.integers(min_value=1, max_value=120),
)
def test_any_sequence_of_failures_and_successes_is_told_sparingly(steps, repeat_min):
    """Whatever happens: each spell starts with exactly one message, reminders are at least
    ``repeat`` apart, a recovery is said only after a spell, and once."""
    repeat, now, ep = timedelta(minutes=repeat_min), T0, episodes.Episode()
    told: list[tuple[str, datetime]] = []
    for failed, gap_s in steps:
        now += timedelta(seconds=gap_s)
        if failed:
            said, ep = episodes.report(ep, now, repeat)
            if said:
                told.append((said, now))
        else:
            store = EpisodeStore({"k": ep})
            if events._end(store, "k"):  # type: ignore[arg-type]
                told.append(("recovered", now))
            ep = store.episode("k")
    spells = " ".join(kind for kind, _ in told).split("recovered")
    for spell in spells:
        kinds = spell.split()
        assert kinds[:1] in ([], ["first"]) and "first" not in kinds[1:]
    sent = [(kind, at) for kind, at in told if kind in ("first", "reminder")]
    for (_, before), (kind, at) in itertools.pairwise(sent):
        if kind == "reminder":
            assert at - before >= repeat


# --- what the messages say ---------------------------------------------------------------------


def test_a_price_alert_says_the_rule_the_price_the_time_and_the_dashboard():
    alert = Alert("above", T0, 100_123.45, 100_000.0, 99_990.0, "BTC-USD rose above 100,000.00: 100,123.45")
    m = messages.price_alert(alert, "http://dash.example:8501")
    assert m.topic == "price" and m.key == alert.id
    assert "BTC_ALERT_ABOVE = 100,000.00" in m.body
    assert "consensus price: 100,123.45 USD" in m.body
    assert "at: 2026-12-06T12:00:00Z" in m.body
    assert "dashboard: http://dash.example:8501" in m.body
    move = Alert("move_down", T0, 95_000.0, 2.0, 97_000.0, "BTC-USD moved -2.06 % in 60 min")
    assert "BTC_ALERT_MOVE_PCT = 2 % (move down)" in messages.price_alert(move, "http://d").body


def test_a_failure_names_dag_run_task_error_and_log_link():
    link = messages.task_log_url(
        "http://af:8080/", "btc_ingest", "manual__2026-12-06T12:00:00+00:00", "produce_window", -1, 2
    )
    assert (
        link
        == "http://af:8080/dags/btc_ingest/runs/manual__2026-12-06T12%3A00%3A00%2B00%3A00/tasks/produce_window?try_number=2"
    )
    m = messages.run_failed(
        dag_id="btc_ingest",
        run_id="r1",
        task_id="produce_window",
        error="ValueError: boom",
        log_url=link,
        failures=1,
        since=T0,
        reminder=False,
    )
    assert m.title == "btc_ingest failed" and m.kind == "failure"
    for part in ("DAG: btc_ingest", "run: r1", "failed task: produce_window", "error: ValueError: boom", link):
        assert part in m.body
    reminder = messages.run_failed(
        dag_id="btc_ingest", run_id="r9", task_id="t", error="", log_url=link, failures=7, since=T0, reminder=True
    )
    assert reminder.title == "btc_ingest is still failing" and "7 failed task(s)" in reminder.body
    assert "mapped/3" in messages.task_log_url("http://af", "d", "r", "t", 3)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("first\nsecond"), "ValueError: first"),
        (RuntimeError(), "RuntimeError"),
        ("\n\n  text line  \nmore", "text line"),
        (None, ""),
        ("x" * 1000, "x" * 299 + "…"),
    ],
)
def test_the_first_line_of_an_error(error, line):
    assert messages.first_line(error) == line


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=14, seconds=59), "14 min"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(days=3, hours=4), "3 d 4 h"),
        (timedelta(seconds=-5), "0 s"),
    ],
)
def test_durations_read_as_people_say_them(span, text):
    assert messages.duration_text(span) == text


def test_fresh_again_says_after_how_long():
    m = messages.data_fresh(since=T0, now=T0 + timedelta(minutes=14), newest=T0, dashboard_url="http://d")
    assert m.title == "BTC-USD data fresh again after 14 min" and m.level == "success"
    stale = messages.data_stale(newest=None, age_s=None, stale_after_s=120, dashboard_url="http://d")
    assert "no observation stored yet" in stale.body and "BTC_STALE_AFTER_S = 120 s" in stale.body


# --- URLs are secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("slack://T1abc/B2def/C3ghi/#ops", "slack://***"),
        ("tgram://123456:ABCdef/98765", "tgram://***"),
        ("json://127.0.0.1:8123/hook/tok", "json://127.0.0.1:8123/***"),
        ("jsons://user:pw@hooks.example.com/a/b?token=x", "jsons://hooks.example.com/***"),
        ("mailtos://me:app-pw@gmail.com", "mailtos://gmail.com/***"),
        ("no scheme at all", MASK),
    ],
)
def test_a_notification_url_is_shown_without_its_secrets(url, shown):
    assert redact_notify_url(url) == shown


SECRET = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=40)


@given(st.sampled_from(["slack", "tgram", "discord", "json", "jsons", "mailto", "ntfys", "pover"]), SECRET, SECRET)
def test_no_token_of_any_url_is_ever_shown(scheme, token, other):
    # a part that is a plain word ("localhost", "markdown") is left in messages on purpose: masking it
    # would mask ordinary text, and such a word keeps nothing secret (hypothesis found "LOCALHOST")
    assume(not {token.lower(), token[::-1].lower(), other.lower()} & HARMLESS_PARTS)
    url = f"{scheme}://{token}@example.org/{other}/{token[::-1]}"
    shown = redact_notify_url(url)
    text = redact_notify_text(f"failed to reach {url}; token {token} refused ({other})", [url])
    for secret in (token, other, token[::-1]):
        assert secret not in shown and secret not in text


def test_settings_read_url_lists_and_fall_back_per_topic():
    s = load_settings(
        {
            "BTC_NOTIFY_URLS": "json://a:1/x , mailto://h?to=a@x.org,b@x.org  slack://T/B/C",
            "BTC_NOTIFY_STALE_URLS": "tgram://bot/chat",
        }
    )
    assert s.notify_urls == ("json://a:1/x", "mailto://h?to=a@x.org,b@x.org", "slack://T/B/C")
    assert s.notify_targets("price") == s.notify_targets("failure") == s.notify_urls
    assert s.notify_targets("stale") == ("tgram://bot/chat",)
    assert s.all_notify_urls == (*s.notify_urls, "tgram://bot/chat")
    assert "tgram" not in repr(s) and "slack" not in repr(s)
    assert load_settings({}).all_notify_urls == ()


def test_a_bad_url_is_named_without_its_secret():
    with pytest.raises(ConfigError) as caught:
        load_settings({"BTC_NOTIFY_URLS": "slack://T/B/C hunter2secret"})
    assert "BTC_NOTIFY_URLS" in str(caught.value) and "no Apprise URL" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


# --- no URL: nothing sent, nothing read -----------------------------------------------------------


class Untouchable:
    """A store that fails the test when anything asks it anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was used ({name}) although no URL is configured")


def test_without_urls_nothing_is_read_written_or_sent():
    s, store = load_settings({}), Untouchable()
    assert events.task_failed(store, s, dag_id="d", run_id="r", task_id="t", error="e", now=T0) == []  # type: ignore[arg-type]
    assert events.run_succeeded(store, s, dag_id="d", run_id="r", now=T0) == []  # type: ignore[arg-type]
    assert events.check_freshness(store, s, T0) == []  # type: ignore[arg-type]
    assert deliver(messages.check_message(T0), [], store) == []  # type: ignore[arg-type]
    assert events.send_price_alerts(store, s, []) == []  # type: ignore[arg-type]
    assert events.resend_lost_alerts(store, s, T0) == []  # type: ignore[arg-type]


def test_a_failed_check_is_logged_without_the_urls_it_quotes(caplog):
    url = "tgram://123456:bottoken42/-100200300"

    def check() -> list[Any]:
        raise RuntimeError(f"could not reach {url}; token bottoken42 refused")

    outbox = Outbox(secret_urls=[url])
    outbox.call(check)
    assert outbox.close(5) == []
    (record,) = [r for r in caplog.records if "notification check" in r.getMessage()]
    assert "check failed: could not reach tgram://***" in record.getMessage()
    assert "bottoken42" not in caplog.text and "123456" not in caplog.text


# --- delivery against a local HTTP server ----------------------------------------------------------


class Receiver:
    def __init__(self, failures: int) -> None:
        self.statuses: list[int] = []
        self.bodies: list[str] = []
        self.failures = failures
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                status = 500 if len(receiver.statuses) < receiver.failures else 200
                receiver.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook/s3cretpath"


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    r = Receiver(getattr(request, "param", 0))
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.mark.parametrize(
    ("receiver", "outcome", "tries"), [(0, "sent", 1), (2, "sent", 3), (9, "failed", 3)], indirect=["receiver"]
)
def test_a_failing_receiver_is_retried_with_a_bound(receiver, outcome, tries):
    d = send(messages.check_message(T0), receiver.url, **FAST)
    assert (d.outcome, d.attempts) == (outcome, tries) and len(receiver.statuses) == tries
    assert d.channel.endswith("/***") and "s3cretpath" not in d.detail


def test_an_unknown_scheme_is_not_retried():
    d = send(messages.check_message(T0), "nosuchservice://x/y", **FAST)
    assert (d.outcome, d.attempts) == ("invalid_url", 1)


class Recorder:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    def record_deliveries(self, docs: list[dict[str, Any]]) -> None:
        self.docs += docs


def test_each_delivery_is_recorded_with_what_where_when_and_how(receiver):
    rec = Recorder()
    deliver(messages.check_message(T0), [receiver.url], rec, clock=lambda: T0, **FAST)  # type: ignore[arg-type]
    (doc,) = rec.docs
    assert {k: doc[k] for k in ("at", "topic", "kind", "outcome", "attempts")} == {
        "at": T0,
        "topic": "test",
        "kind": "test",
        "outcome": "sent",
        "attempts": 1,
    }
    assert doc["channel"] == redact_notify_url(receiver.url) and "s3cretpath" not in str(doc)


class ClaimLog:
    """A store that grants each claim but the ``refused`` alerts', and logs claims and marks in order."""

    def __init__(self, refused: frozenset[Alert] = frozenset()) -> None:
        self.refused, self.log = refused, []  # type: ignore[var-annotated]

    def claim_alerts(self, alerts: list[Alert], now: datetime, lease: timedelta) -> list[Alert]:
        self.log.append(("claim", [a.threshold for a in alerts], lease))
        return [a for a in alerts if a not in self.refused]

    def mark_alert_notified(self, alert: Alert, now: datetime) -> None:
        self.log.append(("mark", alert.threshold))

    def record_deliveries(self, docs: list[dict[str, Any]]) -> None:
        pass


def test_each_alert_is_claimed_just_before_its_own_delivery(receiver):
    fired = [Alert("above", T0, level + 1, level, message="rose") for level in (90_000.0, 91_000.0, 92_000.0)]
    store, lease = ClaimLog(refused=frozenset({fired[1]})), events.alert_claim_lease(1)
    s = load_settings({"BTC_NOTIFY_PRICE_URLS": receiver.url})
    sent = events.send_price_alerts(store, s, fired)  # type: ignore[arg-type]
    # the second is being sent by another run: neither sent nor marked here
    assert [d.outcome for d in sent] == ["sent", "sent"] and len(receiver.statuses) == 2
    assert store.log == [
        ("claim", [90_000.0], lease),
        ("mark", 90_000.0),
        ("claim", [91_000.0], lease),
        ("claim", [92_000.0], lease),
        ("mark", 92_000.0),
    ]


class SweepLog(ClaimLog):
    def unsent_alerts(self, now: datetime, within: timedelta, lease: timedelta) -> list[Alert]:
        self.log.append(("sweep", within, lease))
        return []


@pytest.mark.parametrize("channels", [1, 50])
def test_the_sweep_looks_back_far_enough_for_a_dead_claim_to_expire_inside_it(channels):
    store = SweepLog()
    s = load_settings({"BTC_NOTIFY_PRICE_URLS": ",".join(f"json://127.0.0.1:9/{i}" for i in range(channels))})
    events.resend_lost_alerts(store, s, T0)  # type: ignore[arg-type]
    ((_, within, lease),) = store.log
    assert lease == events.alert_claim_lease(channels) and within >= max(events.RESEND_WITHIN, 2 * lease)


@pytest.mark.parametrize("channels", [1, 2, 4, 5, 10, 50])
def test_a_claim_outlasts_the_slowest_delivery_to_every_channel(channels):
    lease = events.alert_claim_lease(channels)
    assert lease >= events.ALERT_CLAIM_LEASE and lease.total_seconds() >= 2 * channels * WORST_SEND_S
    assert events.alert_claim_lease(1) == events.ALERT_CLAIM_LEASE  # the usual case: one or two channels


@pytest.mark.parametrize("receiver", [9], indirect=True)
def test_notify_test_prints_each_outcome_and_fails_when_one_failed(receiver, monkeypatch, capsys):
    monkeypatch.setenv("BTC_NOTIFY_URLS", receiver.url)
    monkeypatch.setattr("btc_pipeline.notify.deliver.WAIT_MIN_S", 0.01)
    assert main(["notify", "test", "--no-record"]) == 1
    out = capsys.readouterr().out
    assert f"failed      {redact_notify_url(receiver.url)} (3 tries)" in out
    assert "s3cretpath" not in out and "0 of 1 channel(s)" in out
    receiver.failures = 0
    receiver.statuses.clear()
    assert main(["notify", "test", "--no-record"]) == 0
    assert "1 of 1 channel(s) received the test message" in capsys.readouterr().out


def test_notify_test_without_urls_says_what_to_set(monkeypatch, capsys):
    for key in ("BTC_NOTIFY_URLS", "BTC_NOTIFY_PRICE_URLS", "BTC_NOTIFY_FAILURE_URLS", "BTC_NOTIFY_STALE_URLS"):
        monkeypatch.delenv(key, raising=False)
    assert main(["notify", "test"]) == 2
    assert "set BTC_NOTIFY_URLS" in capsys.readouterr().err


@given(st.text(max_size=200))
def test_any_notify_setting_is_a_list_of_urls_or_a_config_error(text):
    try:
        urls = load_settings({"BTC_NOTIFY_URLS": text}).notify_urls
    except ConfigError as exc:
        assert "BTC_NOTIFY_URLS" in str(exc)
    else:
        assert all("://" in u and not any(c.isspace() for c in u) for u in urls)


def test_the_health_panel_lists_deliveries_as_recorded():
    from dashboard.view import delivery_rows

    rows = delivery_rows(
        [{"at": T0, "kind": "stale", "title": "BTC-USD data is stale", "channel": "slack://***", "outcome": "failed",
          "attempts": 3, "detail": "HTTP 500"}]
    )  # fmt: skip
    assert rows == [
        {"at": "2026-12-06T12:00:00Z", "what": "stale", "message": "BTC-USD data is stale", "channel": "slack://***",
         "outcome": "failed", "tries": 3, "detail": "HTTP 500"}
    ]  # fmt: skip


@pytest.mark.parametrize("receiver", [9], indirect=True)
def test_apprise_logs_never_show_a_url(receiver, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="apprise")
    send(messages.check_message(T0), receiver.url, **FAST)
    assert caplog.records and "s3cretpath" not in caplog.text
