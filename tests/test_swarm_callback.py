"""SwarmCallback (ML side) against a fake SL node serving the local channel on a Unix socket."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

import logging
import socket
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmlearning.ml.channel import CHANNEL_ENV, ChannelError, recv_frame, send_frame
from swarmlearning.ml.core import SwarmCore
from swarmlearning.ml.params import (
    DEFAULT_CONTRACT,
    SwarmParameterError,
    SwarmParams,
    parse_params,
)
from swarmlearning.weights import from_bytes, to_bytes

LOGGER = "swarmcallback.test"


class FakeSL:
    """A one-client SL stand-in: answers every request; merged/final weights = received * factor."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.factor = 0.5
        self.waiting: list[str] = []
        self.over_at_round: int | None = None
        self.requests: list[tuple[dict[str, Any], dict[str, np.ndarray] | None]] = []
        self.round = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def kinds(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [h for h, _ in self.requests if kind is None or h["type"] == kind]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    while True:
                        header, body = recv_frame(conn)
                        self._answer(conn, header, body)
                except (ChannelError, OSError):
                    continue

    def _scaled(self, weights: dict[str, np.ndarray]) -> bytes:
        return to_bytes({k: (v * self.factor).astype(v.dtype) for k, v in weights.items()})

    def _answer(self, conn: socket.socket, header: dict[str, Any], body: bytes) -> None:
        weights = from_bytes(body) if body else None
        self.requests.append((header, weights))
        kind = header["type"]
        if kind == "open":
            if not isinstance(header.get("params"), dict):
                send_frame(conn, {"type": "error", "message": "open needs a params object"})
                return
            send_frame(conn, {"type": "ok", "session": {"contract": "c", "round": 0}})
        elif kind == "progress":
            send_frame(conn, {"type": "ok"})
        elif kind == "sync":
            for message in self.waiting:
                send_frame(conn, {"type": "waiting", "message": message})
            if header["kind"] == "train":
                self.round += 1
            over = self.over_at_round is not None and self.round >= self.over_at_round
            send_frame(conn, {"type": "merged", "round": self.round, "leader": "sl-1",
                              "over": over}, self._scaled(weights))
        elif kind == "close":
            send_frame(conn, {"type": "final", "round": self.round}, self._scaled(weights))
        else:
            send_frame(conn, {"type": "error", "message": f"unknown request {kind}"})

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def socket_dir(tmp_path: Path):
    if len(str(tmp_path)) < 80:  # Unix socket paths are limited to about 100 bytes
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="swcb") as short:
        yield Path(short)


@pytest.fixture
def sl(socket_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SWARM_LOOPBACK", raising=False)
    server = FakeSL(str(socket_dir / "sl.sock"))
    monkeypatch.setenv(CHANNEL_ENV, server.path)
    yield server
    server.stop()


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return logging.getLogger(LOGGER)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


# --- parameters ------------------------------------------------------------------------------

def _parse(**kwargs: Any) -> SwarmParams:
    return parse_params({"syncFrequency": 4, "minPeers": 2, **kwargs}, "PYTORCH")


def test_defaults_and_session_fields():
    params = _parse(mergeMethod="GeoMedian", totalEpochs=3)
    assert params.trainingContract == DEFAULT_CONTRACT
    assert params.checkinModelOnTrainEnd == "snapshot" and params.nodeWeightage == 1
    assert params.mergeMethod == "geomedian"
    assert params.session_fields() == {
        "syncFrequency": 4, "minPeers": 2, "trainingContract": DEFAULT_CONTRACT,
        "useAdaptiveSync": False, "checkinModelOnTrainEnd": "snapshot", "nodeWeightage": 1,
        "mergeMethod": "geomedian", "totalEpochs": 3, "platform": "PYTORCH"}


@pytest.mark.parametrize("kwargs, words", [
    ({"syncFrequency": 0}, ["syncFrequency", "greater than 0", "got 0"]),
    ({"syncFrequency": 2.5}, ["syncFrequency", "whole number", "2.5"]),
    ({"syncFrequency": True}, ["syncFrequency", "True"]),
    ({"syncFrequency": None}, ["syncFrequency is required"]),
    ({"minPeers": -1}, ["minPeers", "greater than 0", "got -1"]),
    ({"minPeers": None}, ["minPeers is required"]),
    ({"trainingContract": ""}, ["trainingContract", "non-empty", "160"]),
    ({"trainingContract": "c" * 161}, ["trainingContract", "at most 160"]),
    ({"useAdaptiveSync": "yes"}, ["useAdaptiveSync", "True or False", "'yes'"]),
    ({"useAdaptiveSync": True}, ["useAdaptiveSync=True needs adsValData"]),
    ({"adsValBatchSize": 0}, ["adsValBatchSize", "None or a whole number", "got 0"]),
    ({"checkinModelOnTrainEnd": "never"}, ["checkinModelOnTrainEnd", "'inactive'", "'never'"]),
    ({"nodeWeightage": 0}, ["nodeWeightage must be a whole number from 1 to 100; got 0"]),
    ({"nodeWeightage": 101}, ["nodeWeightage", "1 to 100", "101"]),
    ({"mergeMethod": "avg"}, ["mergeMethod", "'coordmedian'", "'avg'"]),
    ({"totalEpochs": -2}, ["totalEpochs", "got -2"]),
    ({"lossFunction": 3}, ["lossFunction", "got 3"]),
    ({"lossFunctionArgs": {"reduction": "sum"}}, ["lossFunctionArgs", "without lossFunction"]),
    ({"metricFunction": "F1Score", "metricFunctionArgs": [1]}, ["metricFunctionArgs", "dict"]),
    ({"logger": "root"}, ["logger", "logging.Logger"]),
    ({"mlPlatform": "KERAS"}, ["mlPlatform", "'PYTORCH'", "'KERAS'"]),
    ({"hfMode": "lora"}, ["hfMode", "'peft'"]),
])
def test_bad_values_name_the_parameter_value_and_rule(kwargs, words):
    with pytest.raises(SwarmParameterError) as err:
        _parse(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_unknown_keyword_suggests_close_names():
    with pytest.raises(SwarmParameterError, match="did you mean 'syncFrequency'"):
        _parse(syncFrequncy=3)
    with pytest.raises(SwarmParameterError, match="'mergeMethod'"):
        _parse(mergemethod="mean")
    with pytest.raises(SwarmParameterError, match="known parameters: syncFrequency"):
        _parse(zzz=1)


def test_legacy_names_warn_and_map():
    with pytest.warns(DeprecationWarning) as caught:
        params = parse_params({"sync_interval": 8, "min_peers": 3, "node_weightage": 5,
                               "merge_method": "coordmedian", "val_data": [1],
                               "val_batch_size": 16, "use_adaptive_sync": True,
                               "checkin_model_on_train_end": "active", "total_epochs": 2,
                               "training_contract": "mine"}, "PYTORCH")
    texts = " ".join(str(w.message) for w in caught)
    assert "'sync_interval' is deprecated; use 'syncFrequency'" in texts
    assert "'training_contract' is deprecated; use 'trainingContract'" in texts
    assert (params.syncFrequency, params.minPeers, params.nodeWeightage) == (8, 3, 5)
    assert params.mergeMethod == "coordmedian" and params.adsValBatchSize == 16
    assert params.checkinModelOnTrainEnd == "active" and params.trainingContract == "mine"
    assert params.useAdaptiveSync and params.totalEpochs == 2


def test_deprecation_warning_points_at_the_users_call(sl, log):
    torch = pytest.importorskip("torch")
    from swarmlearning.pyt import SwarmCallback

    with pytest.warns(DeprecationWarning) as caught:
        callback = SwarmCallback(sync_interval=2, min_peers=1, model=torch.nn.Linear(1, 1),
                                 training_contract="c1", logger=log)
    assert len(caught) == 3 and "'min_peers' is deprecated" in str(caught[1].message)
    assert {Path(w.filename).name for w in caught} == {Path(__file__).name}
    assert callback.swarm_params.trainingContract == "c1"
    callback.core.close()


def test_old_and_new_name_together_is_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(SwarmParameterError, match="syncFrequency was given twice"):
            _parse(sync_interval=3)


def test_ml_platform_spellings():
    assert _parse(ml_platform="pytorch").mlPlatform == "PYTORCH"
    assert parse_params({"syncFrequency": 1, "minPeers": 1, "mlPlatform": "TF"}, "KERAS",
                        {"TF": "KERAS"}).mlPlatform == "KERAS"
    with pytest.raises(SwarmParameterError, match="given twice"):
        _parse(ml_platform="PYTORCH", mlPlatform="PYTORCH")


# --- core: loopback, channel errors, adaptive sync -------------------------------------------

def test_loopback_validates_but_never_connects(monkeypatch, caplog, log):
    monkeypatch.setenv("SWARM_LOOPBACK", "True")
    monkeypatch.setenv(CHANNEL_ENV, "/nonexistent/sl.sock")
    from swarmlearning.pyt import SwarmCallback
    torch = pytest.importorskip("torch")
    with pytest.raises(SwarmParameterError, match="nodeWeightage"):
        SwarmCallback(syncFrequency=2, minPeers=2, model=torch.nn.Linear(2, 1),
                      nodeWeightage=0, logger=log)
    model = torch.nn.Linear(2, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    callback = SwarmCallback(syncFrequency=2, minPeers=2, model=model, logger=log)
    callback.on_train_begin()
    for _ in range(5):
        assert callback.on_batch_end() is False
    callback.on_epoch_end(0)
    callback.on_train_end()
    assert callback.core.client is None and callback.core.batches == 5
    assert callback.core.completed_epochs == 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    messages = _messages(caplog)
    assert sum("SWARM_LOOPBACK is on" in m for m in messages) == 2
    assert any("keeping the local model" in m for m in messages)


def test_an_ml_program_started_before_its_sl_waits_for_the_channel(socket_dir, monkeypatch,
                                                                   log):
    monkeypatch.delenv("SWARM_LOOPBACK", raising=False)
    path = socket_dir / "late.sock"
    monkeypatch.setenv(CHANNEL_ENV, str(path))
    monkeypatch.setenv("SL_CHANNEL_WAIT_SECONDS", "20")
    started: list[FakeSL] = []
    timer = threading.Timer(0.4, lambda: started.append(FakeSL(str(path))))
    timer.start()
    try:
        began = time.monotonic()
        core = SwarmCore(_parse(), dict, lambda w: None, logger=log)
        assert time.monotonic() - began >= 0.3
        assert core.session == {"contract": "c", "round": 0}
        assert [h["type"] for h in started[0].kinds()] == ["open"]
    finally:
        timer.cancel()
        for server in started:
            server.stop()


def test_unreachable_channel_is_a_clear_early_error(socket_dir, monkeypatch, log):
    monkeypatch.delenv("SWARM_LOOPBACK", raising=False)
    monkeypatch.setenv(CHANNEL_ENV, str(socket_dir / "missing.sock"))
    monkeypatch.setenv("SL_CHANNEL_WAIT_SECONDS", "0.3")
    params = _parse()
    started = time.monotonic()
    with pytest.raises(ChannelError, match="cannot reach the SL node at .*missing.sock.* after "
                                           "waiting 0.3 s.*SL_CHANNEL_WAIT_SECONDS"):
        SwarmCore(params, dict, lambda w: None, logger=log)
    assert 0.3 <= time.monotonic() - started < 5
    monkeypatch.setenv("SL_CHANNEL_WAIT_SECONDS", "soon")
    with pytest.raises(ChannelError, match="SL_CHANNEL_WAIT_SECONDS='soon' is not a number"):
        SwarmCore(params, dict, lambda w: None, logger=log)
    monkeypatch.delenv(CHANNEL_ENV)
    with pytest.raises(ChannelError, match="SL_REQUEST_CHANNEL is not set.*SWARM_LOOPBACK"):
        SwarmCore(params, dict, lambda w: None, logger=log)


class ArrayModel:
    """A framework-free model: one array, for driving SwarmCore directly."""

    def __init__(self) -> None:
        self.weights = {"w": np.ones(3, dtype=np.float32)}

    def get(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.weights.items()}

    def set(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = {k: np.array(v) for k, v in weights.items()}


def test_open_sends_the_session_fields(sl, log):
    params = _parse(totalEpochs=2)
    SwarmCore(params, ArrayModel().get, ArrayModel().set, logger=log)
    (header,) = sl.kinds("open")
    assert header == {"type": "open", "version": 1, "params": params.session_fields()}


def test_adaptive_sync_lengthens_on_improvement_and_shortens_on_stall(sl, caplog, log):
    losses = iter([1.0, 0.5, 0.25, 0.2499, 0.3, 0.3, 0.3, 0.3])
    params = _parse(syncFrequency=4, useAdaptiveSync=True, adsValData=[0], totalEpochs=1)
    model = ArrayModel()
    core = SwarmCore(params, model.get, model.set, lambda: (next(losses), 0.9), logger=log)
    core.train_begin()
    intervals = []
    for _ in range(8):
        while True:
            synced = core.syncs
            core.batch_end()
            if core.syncs > synced:
                break
        intervals.append(core.interval)
    # baseline, better x2 (4->6->9), tiny gain keeps it, then stalls halve down to the floor 1
    assert intervals == [4, 6, 9, 9, 4, 2, 1, 1]
    assert any("adaptive sync" in m and "next sync after 6 batches" in m
               for m in _messages(caplog))
    progress = sl.kinds("progress")
    assert len(progress) == 8 and progress[0]["loss"] == 1.0 and progress[0]["metric"] == 0.9


def test_adaptive_sync_is_capped_at_eight_times(sl, log):
    losses = iter([1.0 / (2 ** i) for i in range(40)])
    params = _parse(syncFrequency=2, useAdaptiveSync=True, adsValData=[0])
    model = ArrayModel()
    core = SwarmCore(params, model.get, model.set, lambda: (next(losses), None), logger=log)
    core.train_begin()
    for _ in range(200):
        core.batch_end()
    assert core.interval == 16


def test_late_joiner_after_the_swarm_finished_stops_at_once(sl, caplog, log):
    sl.over_at_round = 0
    model = ArrayModel()
    core = SwarmCore(_parse(), model.get, model.set, logger=log)
    core.train_begin()
    assert core.over and core.batch_end() is True
    assert any("the swarm has finished training" in m for m in _messages(caplog))
    assert [h["kind"] for h in sl.kinds("sync")] == ["init"]


def test_missing_train_begin_syncs_the_initial_weights_first(sl, caplog, log):
    model = ArrayModel()
    core = SwarmCore(_parse(syncFrequency=1), model.get, model.set, logger=log)
    core.batch_end()
    assert [h["kind"] for h in sl.kinds("sync")] == ["init", "train"]
    assert np.allclose(model.weights["w"], 0.25)
    assert any("on_train_begin was not called" in m for m in _messages(caplog))


def test_totalepochs_zero_warns_that_progress_is_off(monkeypatch, caplog, log):
    monkeypatch.setenv("SWARM_LOOPBACK", "1")
    SwarmCore(_parse(), dict, lambda w: None, logger=log)
    SwarmCore(_parse(totalEpochs=5), dict, lambda w: None, logger=log)
    warned = [r for r in caplog.records if "totalEpochs is 0" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


def test_sl_refusal_raises_with_its_message(sl, log):
    model = ArrayModel()
    core = SwarmCore(_parse(), model.get, model.set, logger=log)
    with pytest.raises(ChannelError, match="unknown request bogus"):
        core._request("bogus", b"", "ok")


# --- PyTorch ---------------------------------------------------------------------------------

def _torch_setup(**kwargs: Any):
    torch = pytest.importorskip("torch")
    from swarmlearning.pyt import SwarmCallback

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 3))
    callback = SwarmCallback(model=model, **kwargs)
    return torch, model, callback


def _train(torch, model, callback, epochs: int, batches: int) -> int:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trained = 0
    callback.on_train_begin()
    for epoch in range(epochs):
        for _ in range(batches):
            x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            trained += 1
            if callback.on_batch_end():
                break
        callback.on_epoch_end(epoch)
        if callback.isSwarmTrainingOver():
            break
    callback.on_train_end()
    return trained


def test_pyt_model_is_required_and_typed(sl, log):
    from swarmlearning.pyt import SwarmCallback
    with pytest.raises(SwarmParameterError, match="model is required"):
        SwarmCallback(syncFrequency=2, minPeers=1, logger=log)
    with pytest.raises(SwarmParameterError, match="torch.nn.Module; got str"):
        SwarmCallback(syncFrequency=2, minPeers=1, model="net", logger=log)
    torch = pytest.importorskip("torch")
    with pytest.raises(SwarmParameterError, match="DataLoader"):
        SwarmCallback(syncFrequency=2, minPeers=1, model=torch.nn.Linear(1, 1),
                      adsValData=[(1, 2)], logger=log)
    with pytest.raises(SwarmParameterError, match="did you mean 'CrossEntropyLoss'"):
        SwarmCallback(syncFrequency=2, minPeers=1, model=torch.nn.Linear(1, 1),
                      lossFunction="CrossEntropyLos", logger=log)
    with pytest.raises(SwarmParameterError, match="not accepted by torch.nn.MSELoss"):
        SwarmCallback(syncFrequency=2, minPeers=1, model=torch.nn.Linear(1, 1),
                      lossFunction="MSELoss", lossFunctionArgs={"bogus": 1}, logger=log)
    assert not sl.kinds("open")  # every check happens before the session opens


def test_pyt_train_begin_loads_the_init_weights(sl, log):
    torch, model, callback = _torch_setup(syncFrequency=3, minPeers=1, logger=log)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    callback.on_train_begin()
    (init,) = sl.kinds("sync")
    assert init["kind"] == "init" and init["completed_epochs"] == 0
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, before[name] * 0.5), name
    callback.core.close()


def test_pyt_syncs_every_sync_frequency_batches(sl, caplog, log):
    sl.waiting = ["waiting for 1 more peer"]
    torch, model, callback = _torch_setup(syncFrequency=3, minPeers=2, totalEpochs=2,
                                          logger=log)
    _train(torch, model, callback, epochs=2, batches=5)  # 10 batches -> syncs after 3, 6, 9
    syncs = sl.kinds("sync")
    assert [h["kind"] for h in syncs] == ["init", "train", "train", "train"]
    assert [h["completed_epochs"] for h in syncs] == [0, 0, 1, 1]
    assert callback.core.syncs == 3 and callback.core.round == 3
    messages = _messages(caplog)
    assert messages.count("SwarmCallback: waiting for 1 more peer") == 4
    assert all(r.levelno == logging.INFO for r in caplog.records if "more peer" in r.message)


def test_pyt_progress_sent_on_epoch_end(sl, log):
    torch, model, callback = _torch_setup(syncFrequency=100, minPeers=1, totalEpochs=2,
                                          logger=log)
    _train(torch, model, callback, epochs=2, batches=2)
    progress = sl.kinds("progress")
    assert [(p["completed_epochs"], p["total_epochs"]) for p in progress] == [(1, 2), (2, 2)]
    assert progress[0]["loss"] is None  # no adsValData: nothing to report


def test_pyt_final_weights_loaded_with_log_line(sl, caplog, log):
    torch, model, callback = _torch_setup(syncFrequency=2, minPeers=1, logger=log,
                                          checkinModelOnTrainEnd="active")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    callback.on_train_begin()
    for _ in range(4):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).sum().backward()
        optimizer.step()
        callback.on_batch_end()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    callback.on_train_end()
    close_header, close_weights = sl.requests[-1]
    assert close_header["type"] == "close" and close_header["mode"] == "active"
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert np.allclose(close_weights[name], before[name].numpy())
            assert torch.allclose(value, before[name] * 0.5), name
    assert ("SwarmCallback: loaded the final swarm model (round 2) into the local model"
            in _messages(caplog))
    callback.on_train_end()  # a second call does nothing
    assert len(sl.kinds("close")) == 1


def test_pyt_float_buffers_synced_but_not_num_batches_tracked(sl, log):
    torch, model, callback = _torch_setup(syncFrequency=2, minPeers=1, logger=log)
    _train(torch, model, callback, epochs=1, batches=2)
    _, weights = next(r for r in sl.requests if r[0]["type"] == "sync")
    assert "1.running_mean" in weights and "1.running_var" in weights and "1.weight" in weights
    assert "1.num_batches_tracked" not in weights
    assert all(w.dtype == np.float32 for w in weights.values())
    assert int(model.state_dict()["1.num_batches_tracked"]) == 2


def test_pyt_warns_when_no_sync_happened(sl, caplog, log):
    torch, model, callback = _torch_setup(syncFrequency=50, minPeers=1, logger=log)
    _train(torch, model, callback, epochs=1, batches=3)
    assert any("syncFrequency 50 is larger than the batches trained (3)" in m
               for m in _messages(caplog))


def test_pyt_validation_loss_and_builtin_accuracy(sl, log):
    torch = pytest.importorskip("torch")
    data = torch.utils.data.TensorDataset(torch.randn(20, 4), torch.randint(0, 3, (20,)))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    torch_, model, callback = _torch_setup(syncFrequency=2, minPeers=1, logger=log,
                                           adsValData=loader, lossFunction="CrossEntropyLoss",
                                           metricFunction="Accuracy",
                                           metricFunctionArgs={"task": "multiclass",
                                                               "num_classes": 3})
    model.train()
    callback.on_train_begin()
    callback.on_batch_end()
    callback.on_batch_end()
    assert model.training  # evaluation restored train mode
    (progress,) = sl.kinds("progress")
    model.eval()
    with torch.no_grad():
        out = model(data.tensors[0])
    expected_loss = float(torch.nn.functional.cross_entropy(out, data.tensors[1]))
    expected_acc = float((out.argmax(1) == data.tensors[1]).float().mean())
    assert progress["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert progress["metric"] == pytest.approx(expected_acc)
    callback.core.close()


def test_pyt_over_stops_training(sl, log):
    sl.over_at_round = 2
    torch, model, callback = _torch_setup(syncFrequency=2, minPeers=1, logger=log)
    trained = _train(torch, model, callback, epochs=5, batches=10)
    assert trained == 4 and callback.isSwarmTrainingOver()
    assert sl.kinds()[-1]["type"] == "close"


# --- Keras -----------------------------------------------------------------------------------

# Keras on torch with numpy 2 warns about numpy's copy keyword inside fit; not ours to fix.
KERAS_NUMPY_WARNING = "ignore:__array__ implementation:DeprecationWarning"


def _keras_model():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.1),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return keras, model


def _keras_data(n: int = 32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


@pytest.mark.filterwarnings(KERAS_NUMPY_WARNING)
def test_keras_callback_syncs_and_loads_final_weights(sl, caplog, log):
    keras, model = _keras_model()
    from swarmlearning.tf import SwarmCallback

    x, y = _keras_data()
    callback = SwarmCallback(syncFrequency=2, minPeers=1, totalEpochs=2, logger=log,
                             adsValData=(x[:8], y[:8]), adsValBatchSize=4)
    assert isinstance(callback, keras.callbacks.Callback)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    syncs = sl.kinds("sync")
    assert [h["kind"] for h in syncs] == ["init"] + ["train"] * 4  # 8 batches / 2
    _, weights = next(r for r in sl.requests if r[0]["type"] == "sync")
    names = sorted(weights)
    assert any(n.endswith(":moving_mean") for n in names)
    assert names[0].startswith("0000:") and len(names) == len(model.weights)
    close_header, close_weights = sl.requests[-1]
    assert close_header == {"type": "close", "version": 1, "mode": "snapshot",
                            "completed_epochs": 2}
    local = {f"{i:04d}:{v.name}": value
             for i, (v, value) in enumerate(zip(model.weights, model.get_weights(), strict=True))}
    for name, value in close_weights.items():
        assert np.allclose(local[name], value * 0.5)
    assert ("SwarmCallback: loaded the final swarm model (round 4) into the local model"
            in _messages(caplog))
    progress = sl.kinds("progress")
    assert len(progress) == 4 + 2 and all(p["loss"] is not None for p in progress)
    assert [p["completed_epochs"] for p in progress][-2:] == [1, 2]


@pytest.mark.filterwarnings(KERAS_NUMPY_WARNING)
def test_keras_over_stops_training(sl, log):
    keras, model = _keras_model()
    from swarmlearning.tf import SwarmCallback

    sl.over_at_round = 1
    x, y = _keras_data()
    batches = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    callback = SwarmCallback(syncFrequency=3, minPeers=1, logger=log)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[callback, counter])
    assert len(batches) == 3 and callback.isSwarmTrainingOver()
    assert [h["kind"] for h in sl.kinds("sync")] == ["init", "train"]
    assert sl.kinds()[-1]["type"] == "close"


@pytest.mark.filterwarnings(KERAS_NUMPY_WARNING)
def test_keras_parameters_and_loopback(monkeypatch, log):
    from swarmlearning.tf import SwarmCallback

    with pytest.raises(SwarmParameterError, match="mergeMethod"):
        SwarmCallback(syncFrequency=1, minPeers=1, mergeMethod="max", logger=log)
    monkeypatch.setenv("SWARM_LOOPBACK", "yes")
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    keras, model = _keras_model()
    x, y = _keras_data(8)
    callback = SwarmCallback(syncFrequency=1, minPeers=1, ml_platform="TF", logger=log)
    assert callback.swarm_params.mlPlatform == "KERAS"
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    assert callback.core.batches == 2 and callback.core.client is None
