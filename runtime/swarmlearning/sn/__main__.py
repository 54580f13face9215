"""python -m swarmlearning.sn: the same as `swci run-sn`."""

from swarmlearning.sn.node import main

raise SystemExit(main())
