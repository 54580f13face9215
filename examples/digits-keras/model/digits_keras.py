"""Digits with Keras 3 and SwarmCallback in `model.fit(callbacks=[...])`, adaptive sync on: one
peer of a non-IID swarm, a local-only baseline (SWARM_LOOPBACK=True) or the central baseline
(PEER_INDEX=0). Keras runs on the backend KERAS_BACKEND names (torch here; tensorflow works
the same where it is installed).

The data: examples/common/digits_split.py. Environment as the PyTorch digits example:
PEER_INDEX, N_PEERS (3), EPOCHS (12), BATCH_SIZE (32), BATCHES_PER_EPOCH (16), SYNC_FREQUENCY (4),
MIN_PEERS,
MERGE_METHOD (mean), CHECKIN_ON_END (active), NODE_WEIGHTAGE (1), TRAINING_CONTRACT, SEED (7),
RESULT_FILE.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "common"))
from digits_split import split  # noqa: E402
from results import weights_digest as digest  # noqa: E402
from results import write_result  # noqa: E402


def build_model() -> keras.Model:
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def weights_digest(model: keras.Model) -> str:
    return digest((f"{index:04d}", np.ascontiguousarray(array))
                  for index, array in enumerate(model.get_weights()))


def main() -> int:
    env = os.environ
    peer = int(env.get("PEER_INDEX", "1"))
    n_peers = int(env.get("N_PEERS", "3"))
    epochs = int(env.get("EPOCHS", "12"))
    seed = int(env.get("SEED", "7"))
    keras.utils.set_random_seed(seed + peer)
    x_train, y_train, x_test, y_test = split(peer, n_peers, seed)
    batch_size = int(env.get("BATCH_SIZE", "32"))
    if peer > 0:
        # the same number of batches per epoch on every peer, so they sync and finish together
        per_epoch = int(env.get("BATCHES_PER_EPOCH", "16"))
        pick = np.random.default_rng(seed + peer).choice(len(y_train), per_epoch * batch_size)
        x_train, y_train = x_train[pick], y_train[pick]
    model = build_model()
    callbacks = []
    if peer > 0:
        from swarmlearning.tf import SwarmCallback

        callbacks.append(SwarmCallback(
            syncFrequency=int(env.get("SYNC_FREQUENCY", "4")),
            minPeers=int(env.get("MIN_PEERS", str(n_peers))),
            trainingContract=env.get("TRAINING_CONTRACT", "defaultbb.cqdb.sml.hpe"),
            mergeMethod=env.get("MERGE_METHOD", "mean"),
            checkinModelOnTrainEnd=env.get("CHECKIN_ON_END", "active"),
            nodeWeightage=int(env.get("NODE_WEIGHTAGE", "1")), totalEpochs=epochs,
            useAdaptiveSync=True, adsValData=(x_test, y_test), adsValBatchSize=256))
    started = time.monotonic()
    history = model.fit(x_train, y_train, epochs=epochs,
                        batch_size=batch_size, callbacks=callbacks,
                        verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    result = {"peer": peer, "accuracy": float(accuracy), "weights": weights_digest(model),
              "epochs_run": len(history.history.get("loss", [])),
              "seconds": time.monotonic() - started}
    print(f"peer {peer} final test accuracy {accuracy:.4f}", flush=True)
    write_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
