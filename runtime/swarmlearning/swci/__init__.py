"""HPE's SWCI web client, `from swarmlearning.swci import Swci` (or `swci`, as HPE's docs write
it): the methods of HPE's wheel, sending SWCI commands to `swci serve`. Each command method
returns the reply's output lines, or [] on failure with getErrors() saying why."""

from swarmlearning.swci.client import Swci, swci
from swarmlearning.swci.session import SwciCacheKey

__all__ = ["Swci", "SwciCacheKey", "swci"]
