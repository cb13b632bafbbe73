"""``python -m myojax.train``: see ``myojax.train.cli``."""

from myojax.train.cli import main

main()
