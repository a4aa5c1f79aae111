"""``BTC_MAX_DEVIATION_PCT``: the cross-exchange check's tolerance, validated like every setting."""

from __future__ import annotations

import pytest

from btc_pipeline.config import ConfigError, load_settings


def test_default_and_explicit_value():
    assert load_settings({}).max_deviation_pct == 1.0
    assert load_settings({"BTC_MAX_DEVIATION_PCT": " 0.25 "}).max_deviation_pct == 0.25


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("one", "BTC_MAX_DEVIATION_PCT='one' is not a number"),
        ("0", r"BTC_MAX_DEVIATION_PCT='0' is out of range; expected 0.001..50"),
        ("-1", "is out of range"),
        ("75", "is out of range"),
        ("nan", "is out of range"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"BTC_MAX_DEVIATION_PCT": value})
