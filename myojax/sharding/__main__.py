"""``python -m myojax.sharding plan ...``: the per-device memory plan."""

from myojax.sharding.memory_plan import main

raise SystemExit(main())
