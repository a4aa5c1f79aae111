"""Every error the package raises on purpose is a BtcPipelineError (one class for callers to catch)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import btc_pipeline
from btc_pipeline.errors import BtcPipelineError


def own_exception_classes() -> list[type[BaseException]]:
    found = []
    for module in pkgutil.walk_packages(btc_pipeline.__path__, "btc_pipeline."):
        if module.name.startswith(("btc_pipeline.tasks", "btc_pipeline.api", "btc_pipeline.cli.__main__")):
            continue  # Airflow's and FastAPI's imports; checked by name below
        mod = importlib.import_module(module.name)
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.name:
                found.append(cls)
    return found


def test_every_error_of_the_package_is_a_btc_pipeline_error():
    classes = own_exception_classes()
    assert len(classes) >= 15, classes  # the scan finds them
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, BtcPipelineError)]
    assert set(outside) <= {"btc_pipeline.exchanges.http.DeadlinePassed"}, outside  # an internal signal


def test_the_api_parameter_error_is_one_too():
    from btc_pipeline.api.params import ParameterError

    assert issubclass(ParameterError, BtcPipelineError)
