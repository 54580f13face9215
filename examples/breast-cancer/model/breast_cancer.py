"""Breast cancer diagnosis with PyTorch and SwarmCallback: one hospital of a four-hospital swarm,
one of which has its labels flipped.

The data: scikit-learn's bundled Wisconsin diagnostic breast cancer set (569 tumours, 30
features, no download). A stratified 20% is the shared held-out test set; every hospital
evaluates the swarm's model on it. The other 80% is split between hospitals A..D with skewed
class balance (A sees mostly malignant tumours, D, a large screening centre, mostly benign
ones); the split is fixed by SEED. Features are standardised with the mean and standard deviation
of the training rows of all four hospitals together: 60 numbers agreed before training (here
every peer can compute them because the data set is public). The test rows never enter them.

The model is a logistic regression (one linear layer, two logits), trained with plain SGD. Beside
it each hospital trains a local twin on the same batches without the swarm, for comparison.

Environment: PEER_INDEX (1..4 = hospitals A..D), FLIP_LABELS (the hospital whose training
labels are flipped, 1..4; 0 = none; default 4), MERGE_METHOD (geomedian; also mean, coordmedian),
EPOCHS (5), BATCHES_PER_EPOCH (4), BATCH_SIZE (16), LR (0.2), SYNC_FREQUENCY (1), MIN_PEERS (4),
NODE_WEIGHTAGE (1), CHECKIN_ON_END (active), TRAINING_CONTRACT (the default), SEED (7),
RESULT_DIR (the result goes to RESULT_DIR/<merge method>_hospital_<letter>.json) or RESULT_FILE
(that exact path), plus the swarm's own SL_REQUEST_CHANNEL and SWARM_LOOPBACK.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

HOSPITALS = "ABCD"
# each hospital's share of the training rows of each class: A mostly malignant, D mostly benign
MALIGNANT_SHARES = (0.50, 0.30, 0.17, 0.03)
BENIGN_SHARES = (0.05, 0.20, 0.25, 0.50)
TEST_SIZE = 0.2


def split(hospital: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hospital `hospital` (1..4)'s standardised training rows and labels (1 = malignant), and
    the shared test set."""
    features, target = load_breast_cancer(return_X_y=True)
    labels = (target == 0).astype(np.int64)  # scikit-learn codes malignant as 0
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=TEST_SIZE, stratify=labels, random_state=seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train = ((x_train - mean) / std).astype(np.float32)
    x_test = ((x_test - mean) / std).astype(np.float32)
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for cls, shares in ((1, MALIGNANT_SHARES), (0, BENIGN_SHARES)):
        members = rng.permutation(np.flatnonzero(y_train == cls))
        cuts = np.round(np.cumsum(shares)[:-1] * len(members)).astype(int)
        rows += np.split(members, cuts)[hospital - 1].tolist()
    rows.sort()
    return x_train[rows], y_train[rows], x_test, y_test


def build_model() -> nn.Module:
    return nn.Linear(30, 2)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        predicted = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((predicted == y).mean())


def weights_digest(model: nn.Module) -> str:
    hasher = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().numpy().tobytes())
    return hasher.hexdigest()


def result_path(env: Mapping[str, str], merge_method: str, letter: str) -> Path | None:
    if env.get("RESULT_FILE"):
        return Path(env["RESULT_FILE"])
    if env.get("RESULT_DIR"):
        return Path(env["RESULT_DIR"]) / f"{merge_method}_hospital_{letter}.json"
    return None


def main() -> int:
    env = os.environ
    peer = int(env.get("PEER_INDEX", "1"))
    if not 1 <= peer <= len(HOSPITALS):
        print(f"PEER_INDEX must be 1..{len(HOSPITALS)}; got {peer}", file=sys.stderr)
        return 2
    letter = HOSPITALS[peer - 1]
    flipped = int(env.get("FLIP_LABELS", "4")) == peer
    merge_method = env.get("MERGE_METHOD", "geomedian")
    epochs = int(env.get("EPOCHS", "5"))
    batch_size = int(env.get("BATCH_SIZE", "16"))
    per_epoch = int(env.get("BATCHES_PER_EPOCH", "4"))
    seed = int(env.get("SEED", "7"))
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = split(peer, seed)
    malignant_share = float(y_train.mean())
    if flipped:
        y_train = 1 - y_train
    dataset = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    # every hospital runs the same number of batches per epoch, whatever its number of rows, so
    # that the peers reach their sync points (and the end) together
    sampler = RandomSampler(dataset, replacement=True, num_samples=per_epoch * batch_size,
                            generator=torch.Generator().manual_seed(seed + peer))
    train = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    model = build_model()
    lr = float(env.get("LR", "0.2"))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    from swarmlearning.pyt import SwarmCallback

    # the validation data of PERFDATA is the hospital's own rows as it has them: the test set
    # stays out of training, and a hospital whose data disagree with the swarm stands out
    own_rows = DataLoader(dataset, batch_size=256)
    callback = SwarmCallback(
        syncFrequency=int(env.get("SYNC_FREQUENCY", "1")),
        minPeers=int(env.get("MIN_PEERS", "4")),
        trainingContract=env.get("TRAINING_CONTRACT", "defaultbb.cqdb.sml.hpe"),
        mergeMethod=merge_method,
        checkinModelOnTrainEnd=env.get("CHECKIN_ON_END", "active"),
        nodeWeightage=int(env.get("NODE_WEIGHTAGE", "1")),
        totalEpochs=epochs, adsValData=own_rows, lossFunction="CrossEntropyLoss",
        metricFunction="Accuracy", model=model)
    callback.on_train_begin()
    # the local twin starts from the swarm's initial weights and sees the same batches
    local = copy.deepcopy(model)
    local_optimizer = torch.optim.SGD(local.parameters(), lr=lr)
    started = time.monotonic()
    history = []
    for epoch in range(epochs):
        for xb, yb in train:
            for net, opt in ((model, optimizer), (local, local_optimizer)):
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
            callback.on_batch_end()
        callback.on_epoch_end(epoch)
        history.append(accuracy(model, x_test, y_test))
        print(f"hospital {letter} epoch {epoch + 1}/{epochs}: test accuracy {history[-1]:.4f}",
              flush=True)
    callback.on_train_end()
    result = {"hospital": letter, "peer": peer, "merge_method": merge_method,
              "labels_flipped": flipped, "accuracy": accuracy(model, x_test, y_test),
              "local_accuracy": accuracy(local, x_test, y_test), "history": history,
              "train_rows": len(y_train), "malignant_share": round(malignant_share, 4),
              "test_rows": len(y_test), "seed": seed, "weights": weights_digest(model),
              "seconds": time.monotonic() - started}
    print(f"hospital {letter} ({merge_method}{', labels flipped' if flipped else ''}): swarm "
          f"test accuracy {result['accuracy']:.4f}, alone {result['local_accuracy']:.4f}",
          flush=True)
    target = result_path(env, merge_method, letter)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
