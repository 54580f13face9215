"""python -m swarmlearning.sl: the same as `swci run-sl`."""

from swarmlearning.sl.node import main

raise SystemExit(main())
