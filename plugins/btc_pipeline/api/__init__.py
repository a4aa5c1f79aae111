"""The read API: a read-only FastAPI app over the store's read model, for programs that consume
the prices (served by uvicorn on port 8000, ``API_PORT``).

- :mod:`~btc_pipeline.api.app`: :func:`create_app`, the app factory (``uvicorn --factory``);
- :mod:`~btc_pipeline.api.routes`: the routes; :mod:`~btc_pipeline.api.models`: what they answer;
- :mod:`~btc_pipeline.api.params`: query parameters, their limits and their 422 messages;
- :mod:`~btc_pipeline.api.metrics`: ``/metrics``; :mod:`~btc_pipeline.api.errors`: error bodies
  (the health report of ``/v1/health`` and ``/metrics`` is :mod:`btc_pipeline.health`'s).
"""

from btc_pipeline.api.app import create_app

__all__ = ["create_app"]
