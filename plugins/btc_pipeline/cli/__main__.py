"""``python -m btc_pipeline.cli``: the ``btc-pipeline`` command (what compose's ``check-secrets`` runs)."""

import sys

from btc_pipeline.cli.main import main

sys.exit(main())
