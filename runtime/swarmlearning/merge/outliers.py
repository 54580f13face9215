"""Which contributions to a robust merge are far outliers.

A median keeps a minority of bad models from moving the result far, but not from moving it at
all: a peer that sends its weights sign-flipped pulls each round's median a little towards zero,
and over many rounds the pulls add up. So coordmedian and geomedian (`robust_merge`) take each
model's distance from their result, over all float tensors, and leave out the models farther
than `factor` times the median of those distances; the rest are merged again.

- The median distance is a typical honest one while fewer than half the models are bad.
- Fewer than 3 models: nothing is left out (with two, neither can be told from the other).
- At most (n - 1) // 2 models are left out, the farthest first, so a majority always remains.
- A distance within FLOOR times the length of the merged model is never far: when most models
  are the same (peers that did not train since the last merge), the median distance is zero,
  and a model that trained a little is not an attacker.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Honest peers trained from the same merged model land at comparable distances from the round's
# median; in the tests, scaled (x 10), sign-flipped and random weights land tens to thousands of
# times farther.
DEFAULT_OUTLIER_FACTOR = 4.0
FLOOR = 1e-4
MIN_MODELS = 3


def far_outliers(distances: np.ndarray, factor: float, floor: Callable[[], float]) -> list[int]:
    """Indices (ascending) of the distances over `factor` times their median and over
    `floor()` (called only when some distance is over the first bound), at most
    (n - 1) // 2 of them, the largest first."""
    n = len(distances)
    if n < MIN_MODELS or factor <= 0:
        return []
    limit = factor * float(np.median(distances))
    far = [i for i in range(n) if distances[i] > limit]
    if not far:
        return []
    least = floor()
    far = [i for i in far if distances[i] > least]
    far.sort(key=lambda i: -float(distances[i]))
    return sorted(far[:(n - 1) // 2])
