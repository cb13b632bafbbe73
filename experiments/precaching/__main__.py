"""``python -m experiments.precaching``: see ``experiments.precaching.cli``."""

import sys

from experiments.precaching.cli import main

sys.exit(main())
