"""``python -m experiments.scaling``: see ``experiments.scaling.cli``."""

import sys

from experiments.scaling.cli import main

sys.exit(main())
