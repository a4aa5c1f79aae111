"""``python -m deploycheck [--keep]``: ``make compose-check``."""

import sys

from deploycheck.check import main

sys.exit(main(sys.argv[1:]))
