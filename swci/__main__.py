"""python -m swci."""

import sys

from swci.cli import main

sys.exit(main())
