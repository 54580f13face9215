"""A hostile ML program for the tests: it talks to its SL over the real channel and submits,
one sync each, weights with a NaN, a tensor of the wrong shape, weights with an Inf, a tensor of
the wrong dtype, a blob over OVERSIZE bytes (the honest leaders' SL_MAX_BLOB_BYTES), and a blob
whose stored bytes do not match their hash (written into its SL's blob directory before the SL
stores it). Then it
finishes with checkinModelOnTrainEnd='inactive' (weight 0) so the honest peers' quorum holds.

Environment: SL_REQUEST_CHANNEL, TRAINING_CONTRACT, MIN_PEERS, BLOB_DIR, OVERSIZE.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from ml_session import open_session

from swarmlearning.ml.channel import ChannelClient
from swarmlearning.weights import digest, from_bytes, to_bytes


def main() -> int:
    client = ChannelClient(on_waiting=lambda message: print("waiting:", message, flush=True))
    open_session(client)
    _, blob = client.request("sync", to_bytes({"bias": np.zeros(3, np.float32)}), kind="init",
                             completed_epochs=0)
    weights = from_bytes(blob)
    name = sorted(weights)[0]

    with_nan = {key: value.copy() for key, value in weights.items()}
    with_nan[name].reshape(-1)[0] = np.nan
    _, blob = client.request("sync", to_bytes(with_nan), kind="train", completed_epochs=0)
    print("sent NaN", flush=True)

    reshaped = dict(from_bytes(blob))
    reshaped[name] = np.zeros(reshaped[name].size + 1, reshaped[name].dtype)
    _, blob = client.request("sync", to_bytes(reshaped), kind="train", completed_epochs=0)
    print("sent a wrong shape", flush=True)

    with_inf = {key: value.copy() for key, value in from_bytes(blob).items()}
    with_inf[name].reshape(-1)[-1] = np.inf
    _, blob = client.request("sync", to_bytes(with_inf), kind="train", completed_epochs=0)
    print("sent Inf", flush=True)

    widened = dict(from_bytes(blob))
    widened[name] = widened[name].astype(np.float64)
    _, blob = client.request("sync", to_bytes(widened), kind="train", completed_epochs=0)
    print("sent a wrong dtype", flush=True)

    padded = dict(from_bytes(blob))
    padded["padding"] = np.zeros(int(os.environ["OVERSIZE"]) // 4 + 1, np.float32)
    _, blob = client.request("sync", to_bytes(padded), kind="train", completed_epochs=0)
    print("sent a blob over the size limit", flush=True)

    honest_looking = {key: value * 1.0001 for key, value in from_bytes(blob).items()}
    data = to_bytes(honest_looking)
    Path(os.environ["BLOB_DIR"]).mkdir(parents=True, exist_ok=True)
    (Path(os.environ["BLOB_DIR"]) / f"{digest(data)}.safetensors").write_bytes(b"\0" * 64)
    _, blob = client.request("sync", data, kind="train", completed_epochs=0)
    print("sent a blob that does not match its hash", flush=True)

    client.request("close", blob, mode="inactive", completed_epochs=1, total_epochs=1)
    print("hostile peer done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
