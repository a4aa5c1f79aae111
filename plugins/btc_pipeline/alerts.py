"""Price alerts: the rules and how a price crossing them becomes an alert. Pure functions, no I/O.

Three kinds of rule, set in ``.env`` (``BTC_ALERT_ABOVE``, ``BTC_ALERT_BELOW``, ``BTC_ALERT_MOVE_PCT``
over ``BTC_ALERT_MOVE_WINDOW_MIN``) and adjustable on the dashboard's page:

- **above**: the consensus price crosses a level upwards (it was at or below, it is above);
- **below**: it crosses a level downwards;
- **move**: it moved by at least a percentage against its price a window ago (up or down).

The drain evaluates the ``.env`` rules after every run that stored data (:func:`evaluate`), so an
alert is recorded when the pipeline sees the crossing, whether or not anybody has the page open.
A crossing fires once: the evaluation keeps the state it needs (the last price seen, and when each
move alert last fired), and a move alert fires again only once its window has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from btc_pipeline.timeutil import format_ts, to_utc

Kind = Literal["above", "below", "move_up", "move_down"]


@dataclass(frozen=True)
class AlertRules:
    """What to alert on; ``None`` / 0 turns a rule off."""

    above: float | None = None
    below: float | None = None
    move_pct: float = 0.0
    move_window: timedelta = timedelta(minutes=60)

    @property
    def active(self) -> bool:
        return self.above is not None or self.below is not None or self.move_pct > 0


@dataclass(frozen=True)
class Alert:
    """One alert: a rule that fired, at a price and time."""

    kind: Kind
    ts: datetime
    price: float
    threshold: float
    reference: float | None = None
    message: str = ""
    after: datetime | None = None

    @property
    def id(self) -> str:
        """Deterministic: the rule, and the evaluation it follows (``after``, the last one remembered).

        An evaluation whose state was not saved (the run died) is redone from the same state, so the
        same crossing gets the same id and is stored once.
        """
        return f"{self.kind}|{self.threshold:g}|{format_ts(self.after or self.ts)}"

    def to_dict(self) -> dict[str, Any]:
        return {"_id": self.id, **asdict(self)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Alert:
        """The alert a stored document (:meth:`to_dict`) holds."""
        values = {k: doc[k] for k in ("kind", "price", "threshold", "message")}
        return cls(
            **values,
            ts=to_utc(doc["ts"]),
            reference=doc.get("reference"),
            after=doc.get("after") and to_utc(doc["after"]),
        )


@dataclass(frozen=True)
class AlertState:
    """What the evaluation remembers between runs."""

    last_price: float | None = None
    last_ts: datetime | None = None
    move_fired: dict[str, datetime] = field(default_factory=dict)


def crossings(rules: AlertRules, previous: float | None, price: float, ts: datetime) -> list[Alert]:
    """The level alerts of moving from ``previous`` to ``price`` (none without a previous price)."""
    out: list[Alert] = []
    if previous is None:
        return out
    if rules.above is not None and previous <= rules.above < price:
        out.append(
            Alert("above", ts, price, rules.above, previous, f"BTC-USD rose above {rules.above:,.2f}: {price:,.2f}")
        )
    if rules.below is not None and previous >= rules.below > price:
        out.append(
            Alert("below", ts, price, rules.below, previous, f"BTC-USD fell below {rules.below:,.2f}: {price:,.2f}")
        )
    return out


def move(rules: AlertRules, reference: float | None, price: float, ts: datetime) -> Alert | None:
    """The move alert of ``price`` against ``reference`` (the price one window earlier), if any."""
    if rules.move_pct <= 0 or reference is None or reference <= 0:
        return None
    change = (price / reference - 1) * 100
    if abs(change) < rules.move_pct:
        return None
    minutes = int(rules.move_window.total_seconds() // 60)
    kind: Kind = "move_up" if change > 0 else "move_down"
    message = f"BTC-USD moved {change:+.2f} % in {minutes} min: {reference:,.2f} -> {price:,.2f}"
    return Alert(kind, ts, price, rules.move_pct, reference, message)


def evaluate(
    rules: AlertRules, state: AlertState, price: float, ts: datetime, reference: float | None
) -> tuple[list[Alert], AlertState]:
    """Evaluate the rules at a new price.

    Args:
        rules: The rules.
        state: What the previous evaluation remembered.
        price: The consensus price now.
        ts: When it was observed.
        reference: The consensus price ``rules.move_window`` before ``ts`` (``None``: unknown).

    Returns:
        The alerts that fire now, and the state to remember. An older price than the last one
        seen changes nothing (evaluations may come out of order).
    """
    if state.last_ts is not None and ts <= state.last_ts:
        return [], state
    fired = [replace(a, after=state.last_ts) for a in crossings(rules, state.last_price, price, ts)]
    moved = move(rules, reference, price, ts)
    moved = None if moved is None else replace(moved, after=state.last_ts)
    move_fired = dict(state.move_fired)
    if moved is not None:
        last = move_fired.get(moved.kind)
        if last is None or ts - last >= rules.move_window:
            fired.append(moved)
            move_fired[moved.kind] = ts
    return fired, replace(state, last_price=price, last_ts=ts, move_fired=move_fired)
