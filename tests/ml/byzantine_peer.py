"""A Byzantine ML program for the tests: it trains nothing, and at every sync sends weights
made from the model it last received: scaled (x 10), sign-flipped (x -1) or random (normal,
standard deviation 1), per ATTACK. It syncs SYNCS times, as often as the honest peers, then
finishes with checkinModelOnTrainEnd='inactive'. Its SL should not lead (SL_MAKE_ME_ADMIN=False),
so it cannot pick the swarm's initial weights.

Environment: SL_REQUEST_CHANNEL, TRAINING_CONTRACT, MIN_PEERS, ATTACK, SYNCS.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from ml_session import open_session

from swarmlearning.ml.channel import ChannelClient
from swarmlearning.weights import from_bytes, to_bytes

ATTACKS = {
    "scaled": lambda weights, rng: {k: v * np.float32(10) for k, v in weights.items()},
    "flipped": lambda weights, rng: {k: -v for k, v in weights.items()},
    "random": lambda weights, rng: {k: rng.standard_normal(v.shape, dtype=np.float32)
                                    for k, v in weights.items()},
}


def main() -> int:
    attack = ATTACKS[os.environ["ATTACK"]]
    rng = np.random.default_rng(0)
    client = ChannelClient(on_waiting=lambda message: print("waiting:", message, flush=True))
    open_session(client)
    _, blob = client.request("sync", to_bytes({"bias": np.zeros(3, np.float32)}), kind="init",
                             completed_epochs=0)
    for _ in range(int(os.environ["SYNCS"])):
        poisoned = attack(dict(from_bytes(blob)), rng)
        _, blob = client.request("sync", to_bytes(poisoned), kind="train", completed_epochs=0)
    client.request("close", blob, mode="inactive", completed_epochs=1, total_epochs=1)
    print(f"byzantine peer done ({os.environ['ATTACK']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
