"""SwarmCallback for PyTorch, under HPE's import path `swarmlearning.pyt`.

The training loop calls the hooks itself::

    swarmCallback = SwarmCallback(syncFrequency=128, minPeers=2, model=model)
    swarmCallback.on_train_begin()
    for epoch in range(epochs):
        for x, y in loader:
            ...  # forward, backward, optimizer step
            swarmCallback.on_batch_end()
        swarmCallback.on_epoch_end(epoch)
    swarmCallback.on_train_end()

What is synced: every floating-point entry of the model's state_dict (parameters and float
buffers such as BatchNorm running statistics); integer buffers (num_batches_tracked) stay local.
"""

from __future__ import annotations

import difflib
import importlib.util
from typing import Any

import numpy as np
import torch

from swarmlearning.ml.core import Evaluation, SwarmCore
from swarmlearning.ml.params import DEFAULT_CONTRACT, SwarmParameterError, parse_params
from swarmlearning.weights import Weights

__all__ = ["SwarmCallback", "SwarmParameterError"]

PLATFORM = "PYTORCH"
BUILTIN_METRICS = ("Accuracy", "MulticlassAccuracy", "BinaryAccuracy")


class _ArgmaxAccuracy:
    """Accuracy without torchmetrics: argmax over classes, or a 0.5 threshold for one output."""

    def __init__(self) -> None:
        self.correct = 0
        self.total = 0

    def to(self, device: torch.device) -> _ArgmaxAccuracy:
        return self

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if output.ndim >= 2 and output.shape[-1] > 1:
            predicted = output.argmax(dim=-1)
        else:
            in_unit = bool(((output >= 0) & (output <= 1)).all())
            predicted = ((output if in_unit else torch.sigmoid(output)) > 0.5).long()
        if target.ndim == predicted.ndim + 1 and target.shape[-1] > 1:
            target = target.argmax(dim=-1)  # one-hot targets
        predicted, target = predicted.reshape(-1), target.reshape(-1).long()
        if predicted.numel() != target.numel():
            raise ValueError(f"metricFunction: {predicted.numel()} predictions for "
                             f"{target.numel()} targets")
        self.correct += int((predicted == target).sum())
        self.total += target.numel()

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


def _close_names(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _make_loss(name: str, args: dict[str, Any]) -> torch.nn.Module:
    losses = [n for n in dir(torch.nn) if n.endswith("Loss")]
    cls = getattr(torch.nn, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise SwarmParameterError(f"lossFunction must name a torch.nn loss class such as "
                                  f"'CrossEntropyLoss'; got {name!r}{_close_names(name, losses)}")
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise SwarmParameterError(f"lossFunctionArgs {args!r} are not accepted by "
                                  f"torch.nn.{name}: {exc}") from None


def _make_metric(name: str, args: dict[str, Any]) -> Any:
    if importlib.util.find_spec("torchmetrics") is None:
        if name in BUILTIN_METRICS:
            return _ArgmaxAccuracy()
        raise SwarmParameterError(
            f"metricFunction {name!r} needs torchmetrics (pip install torchmetrics); without it "
            f"only {', '.join(repr(m) for m in BUILTIN_METRICS)} are built in")
    import torchmetrics

    cls = getattr(torchmetrics, name, None)
    if not isinstance(cls, type):
        names = [n for n in dir(torchmetrics) if n[:1].isupper()]
        raise SwarmParameterError(f"metricFunction must name a torchmetrics class such as "
                                  f"'Accuracy'; got {name!r}{_close_names(name, names)}")
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise SwarmParameterError(f"metricFunctionArgs {args!r} are not accepted by "
                                  f"torchmetrics.{name}: {exc}") from None


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


class SwarmCallback:
    """Joins this PyTorch training to the swarm: call its hooks from the training loop."""

    def __init__(self, syncFrequency: int | None = None, minPeers: int | None = None,
                 trainingContract: str = DEFAULT_CONTRACT, **kwargs: Any) -> None:
        params = parse_params({"syncFrequency": syncFrequency, "minPeers": minPeers,
                               "trainingContract": trainingContract, **kwargs},
                              PLATFORM, stacklevel=3)
        model = params.model
        if model is None:
            raise SwarmParameterError("model is required for the PyTorch SwarmCallback: pass "
                                      "model=<your torch.nn.Module>")
        if not isinstance(model, torch.nn.Module):
            raise SwarmParameterError(f"model must be a torch.nn.Module; got "
                                      f"{type(model).__name__}")
        val_data = params.adsValData
        if val_data is not None and not isinstance(val_data, torch.utils.data.DataLoader):
            raise SwarmParameterError(f"adsValData must be a torch.utils.data.DataLoader for "
                                      f"PyTorch; got {type(val_data).__name__}")
        if params.useAdaptiveSync and params.lossFunction is None:
            raise SwarmParameterError("useAdaptiveSync=True needs lossFunction (the name of a "
                                      "torch.nn loss class) to measure the validation loss")
        self.swarm_params = params
        self.model = model
        self.loss_fn = (None if params.lossFunction is None
                        else _make_loss(params.lossFunction, params.lossFunctionArgs))
        self.metric = (None if params.metricFunction is None
                       else _make_metric(params.metricFunction, params.metricFunctionArgs))
        can_evaluate = val_data is not None and self.loss_fn is not None
        self.core = SwarmCore(params, self._get_weights, self._set_weights,
                              self._evaluate if can_evaluate else None, params.logger)
        self.logger = self.core.logger
        if val_data is not None and self.loss_fn is None:
            self.logger.info("SwarmCallback: adsValData is given without lossFunction, so no "
                             "validation loss is computed")
        if params.hfMode is not None:
            self.logger.info("SwarmCallback: hfMode is for Hugging Face models only; ignored")

    # --- hooks the training loop calls -------------------------------------------------------

    def on_train_begin(self) -> None:
        """Before training: start from the swarm's common weights."""
        self.core.train_begin()

    def on_batch_end(self, batch: int | None = None) -> bool:
        """After every batch; syncs every syncFrequency batches. True: the swarm is done."""
        return self.core.batch_end()

    def on_epoch_end(self, epoch: int | None = None) -> None:
        """After every epoch: count it and report progress to the SL."""
        self.core.epoch_end()

    def on_train_end(self) -> None:
        """After training: check in the model and load the swarm's final model."""
        self.core.train_end()

    def isSwarmTrainingOver(self) -> bool:
        """Whether the swarm has finished training (stop the local loop)."""
        return self.core.over

    # --- weights -----------------------------------------------------------------------------

    def _float_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor for name, tensor in self.model.state_dict().items()
                if tensor.is_floating_point()}

    def _get_weights(self) -> Weights:
        weights: Weights = {}
        for name, tensor in self._float_state().items():
            tensor = tensor.detach().cpu()
            if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
                tensor = tensor.float()
            weights[name] = tensor.numpy()
        return weights

    def _set_weights(self, weights: Weights) -> None:
        local = self._float_state()
        if set(weights) != set(local):
            missing = sorted(set(local) - set(weights))[:5]
            extra = sorted(set(weights) - set(local))[:5]
            raise ValueError(f"the swarm model does not match the local model (missing "
                             f"{missing}, unexpected {extra}); every node must train the same "
                             "model")
        tensors = {}
        for name, target in local.items():
            value = weights[name]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"the swarm model's {name} has shape {tuple(value.shape)}, the "
                                 f"local one {tuple(target.shape)}; every node must train the "
                                 "same model")
            tensors[name] = torch.from_numpy(value if value.flags.writeable else np.copy(value))
        with torch.no_grad():
            self.model.load_state_dict(tensors, strict=False)

    # --- validation --------------------------------------------------------------------------

    def _device(self) -> torch.device:
        for tensor in self.model.state_dict().values():
            return tensor.device
        return torch.device("cpu")

    def _evaluate(self) -> Evaluation | None:
        assert self.loss_fn is not None
        device = self._device()
        loss_fn = self.loss_fn.to(device)
        reduction = getattr(loss_fn, "reduction", "mean")
        metric = None if self.metric is None else self.metric.to(device)
        if metric is not None:
            metric.reset()
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        try:
            with torch.no_grad():
                for batch in self.swarm_params.adsValData:
                    if not isinstance(batch, list | tuple) or len(batch) < 2:
                        raise ValueError("adsValData batches must be (inputs, targets)")
                    inputs, target = _to_device(batch[0], device), _to_device(batch[1], device)
                    output = (self.model(*inputs) if isinstance(inputs, list | tuple)
                              else self.model(inputs))
                    if isinstance(output, list | tuple):
                        output = output[0]
                    loss = loss_fn(output, target)
                    size = len(target) if hasattr(target, "__len__") else 1
                    if reduction == "mean":
                        total += float(loss) * size
                    else:
                        total += float(loss.sum())
                    count += size
                    if metric is not None:
                        metric.update(output, target)
        finally:
            self.model.train(was_training)
        if count == 0:
            self.logger.warning("SwarmCallback: adsValData is empty; no validation loss")
            return None
        value = None if metric is None else float(metric.compute())
        return total / count, value

