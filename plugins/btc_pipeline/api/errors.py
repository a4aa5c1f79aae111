"""How the API answers what it cannot serve: every error is a :class:`~btc_pipeline.api.models.Problem`
body, never a traceback.

- a parameter that cannot be used (ours or FastAPI's own checks): 422, naming the parameter;
- MongoDB does not answer (:class:`~btc_pipeline.store.StoreError`): 503, naming the database and
  ``BTC_MONGO_URI`` (not the URI itself, which may hold a password);
- anything else: 500 with a generic message; the traceback goes to the log only, redacted (a
  driver's error may quote a URI with its password).
"""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from btc_pipeline.api.models import Problem
from btc_pipeline.api.params import ParameterError
from btc_pipeline.redact import redact_text
from btc_pipeline.store import StoreError

log = logging.getLogger(__name__)


def database_message(exc: StoreError, db_name: str) -> str:
    """What to tell a client when MongoDB did not answer (the driver's own text stays in the log)."""
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else type(exc).__name__
    return (
        f"MongoDB did not answer (database {db_name!r}, {cause}): is it up, and does BTC_MONGO_URI point at it? "
        "Try again shortly."
    )


def problem(status_code: int, body: Problem) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status_code)


def install(app: FastAPI, db_name: str) -> None:
    """Register the error handlers on ``app``."""

    @app.exception_handler(ParameterError)
    async def bad_parameter(_: Request, exc: ParameterError) -> JSONResponse:
        return problem(422, Problem(error="bad_parameter", message=exc.message, parameter=exc.parameter))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(part) for part in first.get("loc", ())]
        name = loc[-1] if loc else "request"
        given = f"={first['input']!r}" if isinstance(first.get("input"), (str, int, float)) else ""
        return problem(
            422, Problem(error="bad_parameter", message=f"{name}{given}: {first.get('msg')}", parameter=name)
        )

    @app.exception_handler(StoreError)
    async def database_unavailable(_: Request, exc: StoreError) -> JSONResponse:
        log.warning("answering 503: %s", exc)
        return problem(503, Problem(error="database_unavailable", message=database_message(exc, db_name)))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        trace = redact_text("".join(traceback.format_exception(exc)))
        log.error("unexpected error answering %s %s\n%s", request.method, request.url.path, trace)
        return problem(
            500, Problem(error="internal", message="the API failed to answer this request; its log has the details")
        )
