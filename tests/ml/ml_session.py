"""What the tests' ML programs share (they run as scripts: they import it as a sibling)."""

from __future__ import annotations

import os
from typing import Any


def open_session(client: Any) -> None:
    """Open a session on the channel as a one-epoch program that leaves inactive, on the
    contract and minPeers the environment names (TRAINING_CONTRACT, MIN_PEERS)."""
    client.request("open", params={
        "syncFrequency": 4, "minPeers": int(os.environ["MIN_PEERS"]),
        "trainingContract": os.environ["TRAINING_CONTRACT"], "nodeWeightage": 1,
        "mergeMethod": "mean", "checkinModelOnTrainEnd": "inactive", "totalEpochs": 1})
