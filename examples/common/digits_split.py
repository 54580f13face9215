"""The non-IID digits split shared by the digits examples, the demo and the benchmarks.

scikit-learn's bundled 8x8 digits, split once with a fixed seed: 30% is the common test set;
of the rest, peer i holds its own classes plus 5% of every other class. For 3 peers the classes
are {1,2,3}, {4,5,6} and {7,8,9,0}. Peer 0 means all the training data (the central baseline).
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OTHER_SHARE = 0.05
CLASS_ORDER = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


def peer_classes(n_peers: int) -> list[list[int]]:
    """The classes each peer owns: contiguous runs of 1..9,0 (3 peers: 123 / 456 / 7890)."""
    bounds = np.linspace(0, len(CLASS_ORDER), n_peers + 1).round().astype(int)
    return [CLASS_ORDER[bounds[i]:bounds[i + 1]] or [CLASS_ORDER[i % 10]]
            for i in range(n_peers)]


def split(peer: int, n_peers: int, seed: int = 7) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) for one peer (0 = all training data)."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed,
                                                        stratify=y)
    if peer == 0:
        return x_train, y_train, x_test, y_test
    own = set(peer_classes(n_peers)[peer - 1])
    rng = np.random.default_rng(seed + peer)
    keep = np.array([label in own or rng.random() < OTHER_SHARE for label in y_train])
    return x_train[keep], y_train[keep], x_test, y_test
