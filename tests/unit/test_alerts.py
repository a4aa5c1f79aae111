"""Price alerts: a crossing fires once, a move fires once per window, and the same evaluation redone
(after a run died before saving its state) gives the same alert ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.alerts import Alert, AlertRules, AlertState, evaluate

T = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
S = timedelta(seconds=10)


def run(rules: AlertRules, prices: list[float], reference: float | None = None) -> list[str]:
    state, fired = AlertState(), []
    for i, price in enumerate(prices):
        alerts, state = evaluate(rules, state, price, T + S * i, reference)
        fired += [a.kind for a in alerts]
    return fired


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ([99, 100, 101, 102], ["above"]),  # crosses once, from at-or-below to above
        ([101, 102, 99, 101], ["above"]),  # starts above: only the later crossing fires
        ([102, 99, 101, 99, 101], ["above", "above"]),  # every crossing fires
        ([99, 99.5, 100], []),  # reaching the level is not crossing it
    ],
)
def test_level_crossings_fire_once_each(prices, expected):
    assert run(AlertRules(above=100), prices) == expected


def test_below_fires_on_the_way_down():
    assert run(AlertRules(below=100), [101, 100, 99.9, 98, 101, 97]) == ["below", "below"]


def test_a_move_fires_once_per_window_in_each_direction():
    rules = AlertRules(move_pct=2.0, move_window=timedelta(minutes=60))
    assert run(rules, [103, 103.5, 104], reference=100) == ["move_up"]
    assert run(rules, [97], reference=100) == ["move_down"]
    assert run(rules, [101.9], reference=100) == []
    state = AlertState()
    _, state = evaluate(rules, state, 103, T, 100)
    later, _ = evaluate(rules, state, 104, T + timedelta(minutes=61), 100)
    assert [a.kind for a in later] == ["move_up"]  # the window has passed: it may fire again


def test_an_older_price_changes_nothing_and_a_redone_evaluation_has_the_same_ids():
    rules = AlertRules(above=100)
    _, state = evaluate(rules, AlertState(), 99, T, None)
    first, new_state = evaluate(rules, state, 101, T + S, None)
    again, _ = evaluate(rules, state, 101.5, T + 2 * S, None)  # the state of `first` was never saved
    assert [a.id for a in first] == [a.id for a in again]
    assert evaluate(rules, new_state, 150, T, None) == ([], new_state)


def test_rules_are_off_unless_set():
    assert not AlertRules().active and AlertRules(move_pct=2).active and AlertRules(below=1).active


def test_an_alert_survives_its_document():
    (alert,), _ = evaluate(AlertRules(above=100), AlertState(last_price=99, last_ts=T), 101, T + S, None)
    doc = alert.to_dict()
    assert doc["_id"] == alert.id and set(doc) == {
        "_id",
        "kind",
        "ts",
        "price",
        "threshold",
        "reference",
        "message",
        "after",
    }
    assert Alert.from_document(doc) == alert
