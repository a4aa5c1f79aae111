"""The ``btc-pipeline`` console script: ``gaps`` and ``backfill`` (see :mod:`btc_pipeline.cli.main`)."""

from btc_pipeline.cli.main import main

__all__ = ["main"]
