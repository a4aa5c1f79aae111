"""The ``btc-pipeline`` console script: its commands are listed in :mod:`btc_pipeline.cli.main`."""

from btc_pipeline.cli.main import main

__all__ = ["main"]
