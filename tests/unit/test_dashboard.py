"""The dashboard's behaviour when MongoDB is unreachable or the configuration is bad (Streamlit's
AppTest runs the real app script)."""

from __future__ import annotations

from pathlib import Path

from devstack.processes import free_port

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def test_app_says_clearly_when_mongodb_is_unreachable(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BTC_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/")
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert any("MongoDB is not reachable" in e for e in errors), errors


def test_app_refuses_a_bad_configuration(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BTC_DASHBOARD_REFRESH_S", "often")
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert any("BTC_DASHBOARD_REFRESH_S" in e.value for e in app.error)


def test_the_sidebar_reads_moving_average_periods_and_warns_on_a_bad_list(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BTC_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/")
    monkeypatch.setenv("BTC_SMA_PERIODS", "20,50")
    monkeypatch.setenv("BTC_EMA_PERIODS", "12")
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert [t.value for t in app.sidebar.text_input] == ["20,50", "12"] and not app.sidebar.warning
    app.sidebar.text_input[0].set_value("20,x").run()
    assert any("'20,x' is not a list of bar counts; using 20,50" in w.value for w in app.sidebar.warning)
