"""The stack's Python web services: the simulated exchange, the dashboard and the read API, each ready
when its health route answers."""

from __future__ import annotations

import os
import sys

from devstack.config import StackConfig
from devstack.processes import http_ok
from devstack.service import Service


def simex_service(config: StackConfig) -> Service:
    """The simulated exchange (``tools/simexchange``), serving every exchange's API."""
    port = config.ports["simex"]
    return Service(
        name="simexchange",
        argv=[sys.executable, "-m", "simexchange", "--port", str(port)],
        ready=lambda: http_ok(f"{config.simex_url}/_health"),
        ports=(port,),
        timeout_s=30,
        env={"PYTHONPATH": os.pathsep.join([str(config.root / "tools"), str(config.root / "plugins")])},
    )


def dashboard_service(config: StackConfig) -> Service:
    """The Streamlit dashboard, run in ``dashboard/`` for its ``.streamlit/config.toml`` (headless, no
    usage statistics, the theme, no Deploy toolbar)."""
    app, port = config.root / "dashboard", config.ports["dashboard"]
    streamlit = [str(config.bin / "streamlit"), "run", str(app / "app.py")]
    return Service(
        name="dashboard",
        argv=[*streamlit, "--server.port", str(port), "--server.address", "127.0.0.1"],
        ready=lambda: http_ok(f"{config.dashboard_url}/_stcore/health"),
        ports=(port,),
        timeout_s=90,
        env={"PYTHONPATH": str(config.root / "plugins")},
        cwd=app,
    )


def api_service(config: StackConfig) -> Service:
    """The read API under uvicorn, ready on ``/livez`` (``/v1/health`` is 503 until the data is fresh)."""
    port = config.ports["api"]
    uvicorn = [str(config.bin / "uvicorn"), "--factory", "btc_pipeline.api.app:create_app"]
    return Service(
        name="api",
        argv=[*uvicorn, "--host", "127.0.0.1", "--port", str(port)],
        ready=lambda: http_ok(f"{config.api_url}/livez"),
        ports=(port,),
        timeout_s=60,
        env={"PYTHONPATH": str(config.root / "plugins")},
    )
