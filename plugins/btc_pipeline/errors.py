"""The base of every error the pipeline raises on purpose.

Each module keeps its own specific error (``ConfigError``, ``ExchangeError``, ``SchemaError``,
``StoreError``, ...), each also a ``ValueError`` or ``RuntimeError`` as suits it; all of them are
:class:`BtcPipelineError`, so a caller that only needs to tell "the pipeline said no, with a
message for people" from a bug catches one class.
"""

from __future__ import annotations


class BtcPipelineError(Exception):
    """An error the pipeline raised on purpose; its message says what went wrong and what to do."""
