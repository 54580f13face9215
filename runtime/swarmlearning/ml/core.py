"""The framework-neutral engine behind both SwarmCallbacks: it counts batches, runs sync rounds
with the SL node over the local channel, adapts the sync interval, reports progress and loads
the final swarm model. The framework modules only supply get/set weights and an evaluation."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from swarmlearning.ml.channel import (
    ChannelClient,
    ChannelError,
)
from swarmlearning.ml.params import SwarmParams
from swarmlearning.weights import Weights, from_bytes, to_bytes

LOOPBACK_ENV = "SWARM_LOOPBACK"
LOGGER_NAME = "SwarmCallback"
# adaptive sync: a relative improvement above this lengthens the interval
ADAPTIVE_MIN_GAIN = 0.005
ADAPTIVE_GROW = 1.5
ADAPTIVE_SHRINK = 0.5
ADAPTIVE_MAX_FACTOR = 8

Evaluation = tuple[float, float | None]


def loopback_enabled() -> bool:
    """Whether SWARM_LOOPBACK asks to train without a swarm (True, true, 1 or yes)."""
    return os.environ.get(LOOPBACK_ENV, "").strip().lower() in ("true", "1", "yes")


def default_logger() -> logging.Logger:
    """HPE's default: a logger named SwarmCallback at INFO, writing to stdout."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(name)s : %(levelname)s : %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger


class SwarmCore:
    """One ML program's swarm session: sync rounds every few batches, progress, the final model."""

    def __init__(self, params: SwarmParams, get_weights: Callable[[], Weights],
                 set_weights: Callable[[Weights], None],
                 evaluate: Callable[[], Evaluation | None] | None = None,
                 logger: logging.Logger | logging.LoggerAdapter | None = None,
                 channel_path: str | None = None) -> None:
        self.params = params
        self.get_weights = get_weights
        self.set_weights = set_weights
        self.evaluate = evaluate
        self.logger = logger or params.logger or default_logger()
        self.loopback = loopback_enabled()
        self.interval = params.syncFrequency
        self.countdown = self.interval
        self.batches = 0
        self.completed_epochs = 0
        self.syncs = 0
        self.round: int | None = None
        self.over = False
        self.closed = False
        self.began = False
        self.session: Any = None  # what the SL said about the session (contract, round, uid)
        self.best_loss: float | None = None
        self.last_eval: Evaluation | None = None
        self.client: ChannelClient | None = None

        if params.totalEpochs == 0:
            self.logger.warning("SwarmCallback: totalEpochs is 0, so progress and ETA are off; "
                                "set totalEpochs to the number of epochs you train")
        if self.loopback:
            self.logger.info(f"SwarmCallback: {LOOPBACK_ENV} is on: parameters are checked, "
                             "no swarm is joined and the local model trains alone")
            return
        self.client = ChannelClient(channel_path, on_waiting=self._waiting)
        answer, _ = self._request("open", b"", "ok", params=params.session_fields())
        self.session = answer.get("session")
        self.logger.info(f"SwarmCallback: joined the swarm on contract {params.trainingContract} "
                         f"(syncFrequency {params.syncFrequency}, minPeers {params.minPeers})")

    # --- channel -------------------------------------------------------------------------------

    def _waiting(self, message: str) -> None:
        self.logger.info(f"SwarmCallback: {message}")

    def _request(self, request_type: str, payload: bytes, expect: str, /,
                 **fields: Any) -> tuple[dict[str, Any], bytes]:
        if self.client is None:
            raise ChannelError("the swarm session is closed; create a new SwarmCallback to "
                               "train again")
        answer, body = self.client.request(request_type, payload, **fields)
        if answer["type"] != expect:
            raise ChannelError(f"the SL answered {request_type!r} with {answer['type']!r}, "
                               f"expected {expect!r}")
        return answer, body

    def _sync(self, kind: str) -> None:
        payload = to_bytes(self.get_weights())
        answer, body = self._request("sync", payload, "merged", kind=kind,
                                     completed_epochs=self.completed_epochs)
        if body:
            self.set_weights(from_bytes(body))
        if answer.get("round") is not None:
            self.round = int(answer["round"])
        if answer.get("over") and not self.over:
            self.over = True
            self.logger.info(f"SwarmCallback: the swarm has finished training (round "
                             f"{self.round}); stopping local training")

    def _progress(self, loss: float | None, metric: float | None) -> None:
        def finite(value: float | None) -> float | None:  # JSON has no NaN or infinity
            return value if value is not None and np.isfinite(value) else None

        fields = {"completed_epochs": self.completed_epochs,
                  "total_epochs": self.params.totalEpochs, "loss": finite(loss),
                  "metric": finite(metric)}
        try:
            self._request("progress", b"", "ok", **fields)
        except ChannelError as exc:
            if self.client is None:
                raise
            self.logger.warning(f"SwarmCallback: the SL did not take the progress report: {exc}")

    # --- hooks ---------------------------------------------------------------------------------

    def train_begin(self) -> None:
        """Start from the swarm's common weights (the latest merged model for a late joiner)."""
        if self.closed:
            raise ChannelError("the swarm session is closed; create a new SwarmCallback to "
                               "train again")
        self.began = True
        if self.loopback:
            return
        self._sync("init")
        self.logger.info("SwarmCallback: starting from the swarm's common weights"
                         + ("" if self.round is None else f" (round {self.round})"))

    def batch_end(self) -> bool:
        """Count one local batch; sync when the interval is reached. True: stop training."""
        self.batches += 1
        if self.loopback or self.closed:
            return False
        if not self.began:
            self.logger.warning("SwarmCallback: on_train_begin was not called; syncing the "
                                "initial weights now")
            self.train_begin()
        if self.over:
            return True
        self.countdown -= 1
        if self.countdown > 0:
            return False
        self._sync("train")
        self.syncs += 1
        evaluation = self._evaluate()
        if evaluation is not None:
            self._progress(*evaluation)
            if self.params.useAdaptiveSync:
                self._adapt(evaluation[0])
        self.countdown = self.interval
        return self.over

    def epoch_end(self, fallback: Evaluation | None = None) -> None:
        """Count a finished epoch and report progress (loss and metric when known)."""
        self.completed_epochs += 1
        if self.loopback or self.closed:
            return
        loss, metric = self.last_eval or fallback or (None, None)
        self._progress(loss, metric)

    def train_end(self) -> None:
        """Check in the final weights, wait for the swarm and load its final model."""
        if self.loopback:
            self.logger.info(f"SwarmCallback: {LOOPBACK_ENV} is on: keeping the local model")
            return
        if self.closed:
            return
        if self.syncs == 0:
            self.logger.warning(
                f"SwarmCallback: no sync happened during training: syncFrequency "
                f"{self.params.syncFrequency} is larger than the batches trained "
                f"({self.batches}); lower syncFrequency so that this node contributes")
        payload = to_bytes(self.get_weights())
        self.logger.info(f"SwarmCallback: training done; checking in the model "
                         f"({self.params.checkinModelOnTrainEnd}) and waiting for the swarm")
        answer, body = self._request("close", payload, "final",
                                     mode=self.params.checkinModelOnTrainEnd,
                                     completed_epochs=self.completed_epochs)
        if answer.get("round") is not None:
            self.round = int(answer["round"])
        if body:
            self.set_weights(from_bytes(body))
            self.logger.info(f"SwarmCallback: loaded the final swarm model (round {self.round}) "
                             "into the local model")
        else:
            self.logger.warning("SwarmCallback: the SL sent no final model; keeping the local "
                                "model")
        self.close()

    def close(self) -> None:
        """Drop the channel (the SL sees the session end)."""
        self.closed = True
        if self.client is not None:
            self.client.close()
            self.client = None

    # --- adaptive sync -------------------------------------------------------------------------

    def _evaluate(self) -> Evaluation | None:
        if self.evaluate is None:
            return None
        evaluation = self.evaluate()
        if evaluation is not None:
            loss, metric = evaluation
            evaluation = (float(loss), None if metric is None else float(metric))
            self.last_eval = evaluation
        return evaluation

    def _adapt(self, loss: float) -> None:
        if not np.isfinite(loss):
            return
        if self.best_loss is None:
            self.best_loss = loss
            return
        base = self.params.syncFrequency
        previous = self.interval
        if self.best_loss - loss > ADAPTIVE_MIN_GAIN * abs(self.best_loss):
            grown = max(self.interval + 1, int(self.interval * ADAPTIVE_GROW))
            self.interval = min(grown, ADAPTIVE_MAX_FACTOR * base)
        elif loss >= self.best_loss:
            self.interval = max(int(self.interval * ADAPTIVE_SHRINK), base // 4, 1)
        self.best_loss = min(self.best_loss, loss)
        if self.interval != previous:
            self.logger.info(f"SwarmCallback: adaptive sync: validation loss {loss:.6g}; next "
                             f"sync after {self.interval} batches (was {previous})")
