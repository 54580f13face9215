"""python -m swarmlearning.swop: the same as `swci run-swop`."""

from swarmlearning.swop.node import main

raise SystemExit(main())
