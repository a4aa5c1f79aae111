"""The development stack: the whole pipeline as local processes, without Docker.

Tooling, not product: it lives under ``tools/`` and is in neither image. ``make demo``, ``make up``,
``make down``, ``make status`` and ``make airflow`` call ``python -m devstack``; the integration
tests start a stack of their own with :class:`~devstack.stack.Stack` (see that module for the others).
"""

from devstack.config import MODES, StackError
from devstack.service import Service
from devstack.stack import Stack

__all__ = ["MODES", "Service", "Stack", "StackError"]
