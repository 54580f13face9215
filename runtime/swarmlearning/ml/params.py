"""SwarmCallback parameters: HPE's camelCase names, the v0.3 snake_case names (deprecated), and
the checks both frameworks share. A bad value raises SwarmParameterError naming the parameter,
the value and what is allowed."""

from __future__ import annotations

import difflib
import logging
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmlearning.defaults import DEFAULT_CONTRACT, MERGE_METHODS

MAX_CONTRACT_LENGTH = 160
CHECKIN_MODES = ("inactive", "snapshot", "active")
HF_MODES = ("full", "peft")

# v0.3.0 name -> current name
LEGACY_NAMES = {
    "sync_interval": "syncFrequency",
    "min_peers": "minPeers",
    "use_adaptive_sync": "useAdaptiveSync",
    "val_data": "adsValData",
    "val_batch_size": "adsValBatchSize",
    "checkin_model_on_train_end": "checkinModelOnTrainEnd",
    "node_weightage": "nodeWeightage",
    "merge_method": "mergeMethod",
    "total_epochs": "totalEpochs",
    "training_contract": "trainingContract",
}

# HPE documents `mlPlatform` while its code reads `ml_platform`: both are current names.
PLATFORM_NAMES = ("mlPlatform", "ml_platform")

CURRENT_NAMES = (
    "syncFrequency", "minPeers", "trainingContract", "useAdaptiveSync", "adsValData",
    "adsValBatchSize", "checkinModelOnTrainEnd", "nodeWeightage", "mergeMethod", "totalEpochs",
    "lossFunction", "lossFunctionArgs", "metricFunction", "metricFunctionArgs", "model", "logger",
    "hfMode", *PLATFORM_NAMES,
)


class SwarmParameterError(ValueError):
    """A SwarmCallback parameter is missing, unknown or has a value that is not allowed."""


@dataclass(frozen=True)
class SwarmParams:
    """The validated SwarmCallback parameters, under HPE's names."""

    syncFrequency: int
    minPeers: int
    mlPlatform: str
    trainingContract: str = DEFAULT_CONTRACT
    useAdaptiveSync: bool = False
    adsValData: Any = field(default=None, repr=False, compare=False)
    adsValBatchSize: int | None = None
    checkinModelOnTrainEnd: str = "snapshot"
    nodeWeightage: int = 1
    mergeMethod: str = "mean"
    totalEpochs: int = 0
    lossFunction: str | None = None
    lossFunctionArgs: dict[str, Any] = field(default_factory=dict)
    metricFunction: str | None = None
    metricFunctionArgs: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False, compare=False)
    logger: logging.Logger | logging.LoggerAdapter | None = field(
        default=None, repr=False, compare=False)
    hfMode: str | None = None

    def session_fields(self) -> dict[str, Any]:
        """The fields of the channel `open` request: what the SL needs to run the session."""
        return {
            "syncFrequency": self.syncFrequency,
            "minPeers": self.minPeers,
            "trainingContract": self.trainingContract,
            "useAdaptiveSync": self.useAdaptiveSync,
            "checkinModelOnTrainEnd": self.checkinModelOnTrainEnd,
            "nodeWeightage": self.nodeWeightage,
            "mergeMethod": self.mergeMethod,
            "totalEpochs": self.totalEpochs,
            "platform": self.mlPlatform,
        }


def _fail(name: str, value: Any, allowed: str) -> SwarmParameterError:
    return SwarmParameterError(f"{name} must be {allowed}; got {value!r}")


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive(name: str, value: Any) -> int:
    if not _is_whole(value) or value <= 0:
        raise _fail(name, value, "a whole number greater than 0")
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    names = ", ".join(repr(a) for a in allowed)
    raise _fail(name, value, f"one of {names} (any case)")


def _function_name(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "the name of a class, as a string")
    return value.strip()


def _function_args(name: str, value: Any, function: str | None, function_param: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail(name, value, "a dict of keyword arguments")
    if value and function is None:
        raise SwarmParameterError(f"{name} was given without {function_param}: name the class "
                                  f"with {function_param}")
    return dict(value)


def _unknown(name: str) -> SwarmParameterError:
    if name in ("tf", "sess"):
        return SwarmParameterError(
            f"unknown SwarmCallback parameter {name!r}: TF1 graph mode (tf=, sess=) is not "
            "supported; use a Keras model with swarmlearning.tf")
    if name in ("model_name", "maxPeers", "max_peers"):
        return SwarmParameterError(f"SwarmCallback parameter {name!r} is not supported")
    known = list(CURRENT_NAMES) + list(LEGACY_NAMES)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[k] for k in difflib.get_close_matches(name.lower(), list(lowered), n=3)]
    hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
            else "known parameters: " + ", ".join(CURRENT_NAMES))
    return SwarmParameterError(f"unknown SwarmCallback parameter {name!r}; {hint}")


def _resolve_names(kwargs: Mapping[str, Any], stacklevel: int) -> dict[str, Any]:
    """Map every keyword to its current name; warn on old names, refuse doubles and unknowns."""
    resolved: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for name, value in kwargs.items():
        if name in LEGACY_NAMES:
            current = LEGACY_NAMES[name]
            warnings.warn(f"SwarmCallback parameter {name!r} is deprecated; use {current!r}",
                          DeprecationWarning, stacklevel=stacklevel)
        elif name in PLATFORM_NAMES:
            current = "mlPlatform"
        elif name in CURRENT_NAMES:
            current = name
        else:
            raise _unknown(name)
        if current in given_as:
            raise SwarmParameterError(
                f"{current} was given twice (as {given_as[current]!r} and {name!r}); give it once")
        given_as[current] = name
        resolved[current] = value
    return resolved


def parse_params(kwargs: Mapping[str, Any], platform: str,
                 platform_aliases: Mapping[str, str] | None = None,
                 stacklevel: int = 2) -> SwarmParams:
    """Validate SwarmCallback keyword arguments for one ML platform (e.g. "PYTORCH", "KERAS").

    `platform_aliases` maps other accepted mlPlatform values to the platform (e.g. TF -> KERAS).
    `stacklevel` is the caller's depth for deprecation warnings, as in warnings.warn."""
    given = {k: v for k, v in kwargs.items()
             if v is not None or k not in ("syncFrequency", "minPeers", "trainingContract")}
    if given.get("trainingContract") == DEFAULT_CONTRACT and "training_contract" in given:
        del given["trainingContract"]  # the signature's default, not a second value
    values = _resolve_names(given, stacklevel + 1)
    for required in ("syncFrequency", "minPeers"):
        if values.get(required) is None:
            raise SwarmParameterError(f"{required} is required (a whole number greater than 0)")
    sync_frequency = _positive("syncFrequency", values["syncFrequency"])
    min_peers = _positive("minPeers", values["minPeers"])

    contract = values.get("trainingContract", DEFAULT_CONTRACT)
    if not isinstance(contract, str) or not contract or len(contract) > MAX_CONTRACT_LENGTH:
        raise _fail("trainingContract", contract,
                    f"a non-empty string of at most {MAX_CONTRACT_LENGTH} characters")

    adaptive = _flag("useAdaptiveSync", values.get("useAdaptiveSync", False))
    val_data = values.get("adsValData")
    if adaptive and val_data is None:
        raise SwarmParameterError("useAdaptiveSync=True needs adsValData: the validation data "
                                  "whose loss decides the next sync interval")
    val_batch = values.get("adsValBatchSize")
    if val_batch is not None and (not _is_whole(val_batch) or val_batch <= 0):
        raise _fail("adsValBatchSize", val_batch, "None or a whole number greater than 0")

    checkin = _choice("checkinModelOnTrainEnd", values.get("checkinModelOnTrainEnd", "snapshot"),
                      CHECKIN_MODES)
    weightage = values.get("nodeWeightage", 1)
    if not _is_whole(weightage) or not 1 <= weightage <= 100:
        raise _fail("nodeWeightage", weightage, "a whole number from 1 to 100")
    merge = _choice("mergeMethod", values.get("mergeMethod", "mean"), MERGE_METHODS)
    total_epochs = values.get("totalEpochs", 0)
    if total_epochs is None:
        total_epochs = 0
    if not _is_whole(total_epochs) or total_epochs < 0:
        raise _fail("totalEpochs", total_epochs,
                    "a whole number greater than 0 (or 0 to turn progress and ETA off)")

    loss = _function_name("lossFunction", values.get("lossFunction"))
    loss_args = _function_args("lossFunctionArgs", values.get("lossFunctionArgs"), loss,
                               "lossFunction")
    metric = _function_name("metricFunction", values.get("metricFunction"))
    metric_args = _function_args("metricFunctionArgs", values.get("metricFunctionArgs"), metric,
                                 "metricFunction")

    logger = values.get("logger")
    if logger is not None and not isinstance(logger, logging.Logger | logging.LoggerAdapter):
        raise _fail("logger", logger, "a logging.Logger")

    accepted = {platform.upper(): platform.upper()}
    accepted.update({k.upper(): v.upper() for k, v in (platform_aliases or {}).items()})
    given_platform = values.get("mlPlatform", platform)
    if not isinstance(given_platform, str) or given_platform.upper() not in accepted:
        names = ", ".join(repr(a) for a in accepted)
        raise _fail("mlPlatform", given_platform, f"one of {names} for this SwarmCallback")

    hf_mode = values.get("hfMode")
    if hf_mode is not None:
        hf_mode = _choice("hfMode", hf_mode, HF_MODES)

    return SwarmParams(
        syncFrequency=sync_frequency, minPeers=min_peers,
        mlPlatform=accepted[given_platform.upper()],
        trainingContract=contract, useAdaptiveSync=adaptive, adsValData=val_data,
        adsValBatchSize=None if val_batch is None else int(val_batch),
        checkinModelOnTrainEnd=checkin, nodeWeightage=int(weightage), mergeMethod=merge,
        totalEpochs=int(total_epochs), lossFunction=loss, lossFunctionArgs=loss_args,
        metricFunction=metric, metricFunctionArgs=metric_args, model=values.get("model"),
        logger=logger, hfMode=hf_mode)
