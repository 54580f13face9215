"""Digits with PyTorch and SwarmCallback: one peer of a non-IID swarm, a local-only baseline
(SWARM_LOOPBACK=True) or the central baseline (PEER_INDEX=0: all the data).

The data: examples/common/digits_split.py.

Environment: PEER_INDEX (1..N_PEERS, 0 = central), N_PEERS (3), EPOCHS (12), BATCH_SIZE (32),
BATCHES_PER_EPOCH (16, peers only), LR (0.1), SYNC_FREQUENCY (4), MIN_PEERS (N_PEERS),
MERGE_METHOD (mean), CHECKIN_ON_END (active), NODE_WEIGHTAGE (1), TRAINING_CONTRACT (the
default), SEED (7), START_DELAY (seconds between opening the session and training), RESULT_FILE
(where the result JSON goes), plus the swarm's own SL_REQUEST_CHANNEL and SWARM_LOOPBACK.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "common"))
from digits_split import split  # noqa: E402
from results import weights_digest as digest  # noqa: E402
from results import write_result  # noqa: E402


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    model.train()
    return float((predicted == y).mean())


def weights_digest(model: nn.Module) -> str:
    return digest((name, t.detach().cpu().numpy()) for name, t in model.state_dict().items())


def main() -> int:
    env = os.environ
    peer = int(env.get("PEER_INDEX", "1"))
    n_peers = int(env.get("N_PEERS", "3"))
    epochs = int(env.get("EPOCHS", "12"))
    batch_size = int(env.get("BATCH_SIZE", "32"))
    seed = int(env.get("SEED", "7"))
    torch.manual_seed(seed + peer)
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = split(peer, n_peers, seed)
    generator = torch.Generator().manual_seed(seed + peer)
    dataset = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    if peer > 0:
        # every peer runs the same number of batches per epoch, whatever its share of the data,
        # so that the peers reach their sync points (and the end) together
        per_epoch = int(env.get("BATCHES_PER_EPOCH", "16"))
        sampler = RandomSampler(dataset, replacement=True, num_samples=per_epoch * batch_size,
                                generator=generator)
        train = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    else:
        train = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    validation = DataLoader(TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test)),
                            batch_size=256)
    model = build_model()
    # plain SGD with momentum: adaptive optimizers' per-peer state fights the merged weights on
    # non-IID data
    optimizer = torch.optim.SGD(model.parameters(), lr=float(env.get("LR", "0.1")), momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    callback = None
    if peer > 0:
        from swarmlearning.pyt import SwarmCallback

        callback = SwarmCallback(
            syncFrequency=int(env.get("SYNC_FREQUENCY", "4")),
            minPeers=int(env.get("MIN_PEERS", str(n_peers))),
            trainingContract=env.get("TRAINING_CONTRACT", "defaultbb.cqdb.sml.hpe"),
            mergeMethod=env.get("MERGE_METHOD", "mean"),
            checkinModelOnTrainEnd=env.get("CHECKIN_ON_END", "active"),
            nodeWeightage=int(env.get("NODE_WEIGHTAGE", "1")),
            totalEpochs=epochs, adsValData=validation, lossFunction="CrossEntropyLoss",
            metricFunction="Accuracy", model=model)
        time.sleep(float(env.get("START_DELAY", "0")))  # a late starter, for the tests
        callback.on_train_begin()
    started = time.monotonic()
    history = []
    for epoch in range(epochs):
        for xb, yb in train:
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
            if callback is not None:
                callback.on_batch_end()
        if callback is not None:
            callback.on_epoch_end(epoch)
        history.append(accuracy(model, x_test, y_test))
        print(f"peer {peer} epoch {epoch + 1}/{epochs}: test accuracy {history[-1]:.4f}",
              flush=True)
    if callback is not None:
        callback.on_train_end()
    result = {"peer": peer, "accuracy": accuracy(model, x_test, y_test), "history": history,
              "train_samples": len(y_train), "weights": weights_digest(model),
              "seconds": time.monotonic() - started}
    print(f"peer {peer} final test accuracy {result['accuracy']:.4f}", flush=True)
    write_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
