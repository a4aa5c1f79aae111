"""``python -m deploycheck``: ``make compose-check``."""

import sys

from deploycheck.check import main

sys.exit(main(sys.argv[1:]))
