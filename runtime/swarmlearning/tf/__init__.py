"""SwarmCallback for Keras 3, under HPE's import path `swarmlearning.tf`.

It is a real `keras.callbacks.Callback` and works on any backend that lets a callback assign
weights during `fit` (TensorFlow or torch; set KERAS_BACKEND). Keras calls the hooks::

    swarmCallback = SwarmCallback(syncFrequency=128, minPeers=2)
    model.fit(x, y, epochs=10, callbacks=[swarmCallback])

What is synced: every floating-point variable in `model.weights`, trainable or not (BatchNorm
moving statistics included). When KERAS_BACKEND is unset, TensorFlow is not installed and the
Keras config names TensorFlow, the torch backend is chosen before Keras is imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any


def _choose_backend() -> None:
    if "keras" in sys.modules or "KERAS_BACKEND" in os.environ:
        return
    if importlib.util.find_spec("tensorflow") is not None:
        return
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    configured = "tensorflow"
    try:
        with open(os.path.join(home, "keras.json")) as config:
            configured = json.load(config).get("backend", configured)
    except (OSError, ValueError, AttributeError):
        pass
    if configured == "tensorflow" and importlib.util.find_spec("torch") is not None:
        os.environ["KERAS_BACKEND"] = "torch"


_choose_backend()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from swarmlearning.ml.core import Evaluation, SwarmCore  # noqa: E402
from swarmlearning.ml.params import (  # noqa: E402
    DEFAULT_CONTRACT,
    SwarmParameterError,
    parse_params,
)
from swarmlearning.weights import Weights  # noqa: E402

__all__ = ["SwarmCallback", "SwarmParameterError"]

PLATFORM = "KERAS"
PLATFORM_ALIASES = {"TF": "KERAS"}


def _is_float(variable: Any) -> bool:
    dtype = keras.backend.standardize_dtype(variable.dtype)
    return dtype.startswith("float") or dtype == "bfloat16"


def _to_numpy(value: Any) -> np.ndarray:
    if keras.backend.backend() == "torch":  # skips numpy's copy-keyword deprecation path
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)


def _weight_name(index: int, variable: Any) -> str:
    # The variable's own name (kernel, moving_mean, ...) rather than its path: paths carry
    # auto-numbered layer names (dense_3) that can differ between peers running the same model.
    return f"{index:04d}:{variable.name}"


class SwarmCallback(keras.callbacks.Callback):
    """Joins a Keras `fit` to the swarm: pass it in `callbacks=[...]`."""

    def __init__(self, syncFrequency: int | None = None, minPeers: int | None = None,
                 trainingContract: str = DEFAULT_CONTRACT, **kwargs: Any) -> None:
        super().__init__()
        params = parse_params({"syncFrequency": syncFrequency, "minPeers": minPeers,
                               "trainingContract": trainingContract, **kwargs},
                              PLATFORM, PLATFORM_ALIASES, stacklevel=3)
        if params.model is not None and not isinstance(params.model, keras.Model):
            raise SwarmParameterError(f"model must be a keras.Model (or left out: fit passes "
                                      f"it); got {type(params.model).__name__}")
        self.swarm_params = params
        self.core = SwarmCore(params, self._get_weights, self._set_weights,
                              None if params.adsValData is None else self._evaluate,
                              params.logger)
        self.logger = self.core.logger
        if params.model is not None:
            self.set_model(params.model)
        if params.lossFunction is not None or params.metricFunction is not None:
            self.logger.info("SwarmCallback: lossFunction and metricFunction are for PyTorch; "
                             "Keras uses the model's compiled loss and metrics")
        if params.hfMode is not None:
            self.logger.info("SwarmCallback: hfMode is for Hugging Face models only; ignored")

    # --- Keras hooks -------------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start from the swarm's common weights."""
        self.core.train_begin()
        if self.core.over:
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Count the batch; sync every syncFrequency batches; stop when the swarm is done."""
        if self.core.batch_end():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Count the epoch and report progress (fit's own loss when no adsValData is given)."""
        self.core.epoch_end(self._logs_evaluation(logs or {}))

    def on_train_end(self, logs: dict | None = None) -> None:
        """Check in the model and load the swarm's final model."""
        self.core.train_end()

    def isSwarmTrainingOver(self) -> bool:
        """Whether the swarm has finished training."""
        return self.core.over

    # --- weights -----------------------------------------------------------------------------

    def _variables(self) -> list[tuple[str, Any]]:
        return [(_weight_name(i, v), v) for i, v in enumerate(self.model.weights) if _is_float(v)]

    def _get_weights(self) -> Weights:
        weights: Weights = {}
        for name, variable in self._variables():
            value = variable.value
            if keras.backend.standardize_dtype(variable.dtype) == "bfloat16":
                value = keras.ops.cast(value, "float32")  # numpy has no bfloat16
            weights[name] = _to_numpy(value)
        return weights

    def _set_weights(self, weights: Weights) -> None:
        local = self._variables()
        names = {name for name, _ in local}
        if set(weights) != names:
            missing = sorted(names - set(weights))[:5]
            extra = sorted(set(weights) - names)[:5]
            raise ValueError(f"the swarm model does not match the local model (missing "
                             f"{missing}, unexpected {extra}); every node must train the same "
                             "model")
        for name, variable in local:
            if tuple(weights[name].shape) != tuple(variable.shape):
                raise ValueError(f"the swarm model's {name} has shape "
                                 f"{tuple(weights[name].shape)}, the local one "
                                 f"{tuple(variable.shape)}; every node must train the same model")
        for name, variable in local:
            variable.assign(weights[name])

    # --- validation --------------------------------------------------------------------------

    def _evaluate(self) -> Evaluation | None:
        data = self.swarm_params.adsValData
        model = self.model
        # evaluate() resets the compiled metrics; keep fit's running epoch metrics intact
        saved = [(v, np.array(_to_numpy(v.value)))
                 for metric in model.metrics for v in metric.variables]
        torch_training = keras.backend.backend() == "torch" and model.training is True
        try:
            if isinstance(data, tuple | list) and len(data) in (2, 3):
                results = model.evaluate(
                    data[0], data[1], batch_size=self.swarm_params.adsValBatchSize,
                    sample_weight=data[2] if len(data) == 3 else None, verbose=0,
                    return_dict=True)
            else:
                results = model.evaluate(data, verbose=0, return_dict=True)
        finally:
            for variable, value in saved:
                variable.assign(value)
            if torch_training:  # evaluate() leaves the torch module in eval mode
                model.train()
        return self._results_evaluation(results)

    @staticmethod
    def _results_evaluation(results: dict[str, Any]) -> Evaluation | None:
        if "loss" not in results:
            return None
        metric = next((v for k, v in results.items() if k != "loss" and np.ndim(v) == 0), 0.0)
        return float(results["loss"]), float(metric)

    def _logs_evaluation(self, logs: dict[str, Any]) -> Evaluation | None:
        if "val_loss" in logs:
            return self._results_evaluation({k[4:]: v for k, v in logs.items()
                                             if k.startswith("val_")})
        return self._results_evaluation(logs)
