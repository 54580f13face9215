"""The SWOP docker runtime: HPE task bodies and profile nodes mapped onto Docker SDK calls.

Unit tests drive DockerRuntime against FakeEngine, a recording stand-in for a docker SDK client
defined here; one integration test builds a tiny image on a real engine and skips cleanly when
none is reachable."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from swarmlearning.swop.profile import parse_profile
from swarmlearning.swop.runtimes import docker as dr
from swarmlearning.swop.runtimes.docker import DockerRuntime, docker_available
from swarmlearning.swop.runtimes.docker_specs import (
    container_options,
    gpu_request,
    image_ref,
    registry_of,
    render_dockerfile,
)
from swarmlearning.swop.tasks import TaskContext, TaskDefinition, TaskFailed

# -- a recording stand-in for the docker SDK ---------------------------------------------------


class FakeAPIError(Exception):
    status_code = 500

    def __init__(self, message: str, explanation: str | None = None) -> None:
        super().__init__(message)
        self.explanation = explanation or message


class FakeNotFound(FakeAPIError):
    status_code = 404


class FakeImageNotFound(FakeNotFound):
    pass


class FakeBuildError(Exception):
    def __init__(self, reason: str, build_log: list) -> None:
        super().__init__(reason)
        self.msg = reason
        self.build_log = build_log


ERRORS = SimpleNamespace(DockerException=FakeAPIError, APIError=FakeAPIError,
                         NotFound=FakeNotFound, ImageNotFound=FakeImageNotFound,
                         BuildError=FakeBuildError)


@pytest.fixture(autouse=True)
def fake_sdk_errors(monkeypatch):
    monkeypatch.setattr(dr, "sdk_errors", lambda: ERRORS)
    monkeypatch.setattr(dr, "POLL_SECONDS", 0.01)


def tar_bytes(files: dict[str, bytes], top: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if top:
            info = tarfile.TarInfo(top)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


class FakeContainer:
    def __init__(self, engine: FakeEngine, spec: dict[str, Any]) -> None:
        self.engine = engine
        self.spec = spec
        self.name = spec.get("name") or f"helper{len(engine.created)}"
        self.labels = dict(spec.get("labels") or {})
        self.status = "created"
        self.exit_code: int | None = None
        self.log_text = ""
        self.stopped = False
        self.removed = False

    @property
    def attrs(self) -> dict[str, Any]:
        return {"State": {"Status": self.status, "ExitCode": self.exit_code, "OOMKilled": False}}

    def start(self) -> None:
        role = self.labels.get("swci.role")
        if role == "sl":
            self.status, self.log_text = "running", f"{dr.SL_READY}30305\n"
            if self.name in self.engine.sl_exit:
                self.status, self.exit_code = "exited", self.engine.sl_exit[self.name]
                self.log_text = "sl: cannot reach the SN\n"
        elif role == "ml":
            code = self.engine.ml_exit.get(self.name, 0)
            self.log_text = self.engine.ml_logs.get(self.name, "")
            self.status, self.exit_code = ("running", None) if code is None else ("exited", code)

    def reload(self) -> None:
        if self.removed:
            raise FakeNotFound(f"No such container: {self.name}")

    def logs(self, stdout: bool = True, stderr: bool = True, tail: Any = "all") -> bytes:
        lines = self.log_text.splitlines()
        if tail != "all":
            lines = lines[-tail:]
        return "\n".join(lines).encode()

    def stop(self, timeout: int | None = None) -> None:
        self.stopped = True
        self.status, self.exit_code = "exited", 137

    def remove(self, force: bool = False) -> None:
        self.removed = True
        self.engine.containers.items.pop(self.name, None)

    def _volume_at(self, path: str) -> str:
        return next(m["Source"] for m in self.spec["mounts"] if m["Target"] == path)

    def get_archive(self, path: str) -> tuple[list[bytes], dict]:
        files = self.engine.volume_files.get(self._volume_at(path), {})
        data = tar_bytes(files, top=path.rsplit("/", 1)[-1])
        return [data[:100], data[100:]], {"name": path}

    def put_archive(self, path: str, data: Any) -> bool:
        payload = data.read() if hasattr(data, "read") else data
        self.engine.volume_files[self._volume_at(path)] = tar_files(payload)
        return True


def label_match(labels: dict[str, str], filters: dict | None) -> bool:
    wanted = (filters or {}).get("label", [])
    return all(labels.get(k) == v for k, _, v in (item.partition("=") for item in wanted))


class FakeContainers:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.items: dict[str, FakeContainer] = {}

    def create(self, image: str, command: Any = None, **kwargs: Any) -> FakeContainer:
        if image not in self.engine.images:
            raise FakeImageNotFound(f"No such image: {image}")
        spec = {"image": image, "command": command, **kwargs}
        if spec.get("name") in self.items:
            raise FakeAPIError("Conflict", "the container name is already in use")
        container = FakeContainer(self.engine, spec)
        self.items[container.name] = container
        self.engine.created.append(container)
        return container

    def get(self, name: str) -> FakeContainer:
        if name not in self.items:
            raise FakeNotFound(f"No such container: {name}")
        return self.items[name]

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:
        return [c for c in self.items.values()
                if label_match(c.labels, filters) and (all or c.status == "running")]


class FakeVolume:
    def __init__(self, engine: FakeEngine, name: str, **kwargs: Any) -> None:
        self.engine, self.name, self.kwargs = engine, name, kwargs
        self.labels = kwargs.get("labels") or {}

    def remove(self, force: bool = False) -> None:
        if self.name in self.engine.volumes_in_use:
            raise FakeAPIError("volume is in use")
        self.engine.volumes.items.pop(self.name, None)
        self.engine.volume_files.pop(self.name, None)


class FakeVolumes:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.items: dict[str, FakeVolume] = {}

    def create(self, name: str, **kwargs: Any) -> FakeVolume:
        self.items.setdefault(name, FakeVolume(self.engine, name, **kwargs))
        return self.items[name]

    def get(self, name: str) -> FakeVolume:
        if name not in self.items:
            raise FakeNotFound(f"get {name}: no such volume")
        return self.items[name]

    def list(self, filters: dict | None = None) -> list[FakeVolume]:
        return [v for v in self.items.values() if label_match(v.labels, filters)]


class FakeImage:
    def __init__(self, engine: FakeEngine, ref: str) -> None:
        self.engine, self.ref = engine, ref

    def tag(self, repository: str, tag: str | None = None) -> bool:
        self.engine.tags.append((self.ref, repository, tag))
        self.engine.images.add(f"{repository}:{tag}")
        return True


class FakeAPI:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def build(self, **kwargs: Any) -> Any:
        context = Path(kwargs["path"])
        self.engine.builds.append({**kwargs, "files": sorted(
            str(p.relative_to(context)) for p in context.rglob("*")),
            "dockerfile_text": (context / kwargs["dockerfile"]).read_text()})
        yield from self.engine.build_chunks
        if not any("error" in chunk for chunk in self.engine.build_chunks):
            self.engine.images.add(kwargs["tag"])

    def pull(self, repository: str, tag: str | None = None, **kwargs: Any) -> Any:
        self.engine.pulls.append({"repository": repository, "tag": tag, **kwargs})
        if self.engine.pull_error is not None:
            raise self.engine.pull_error
        yield from self.engine.pull_chunks
        self.engine.images.add(f"{repository}:{tag}")


class FakeEngine:
    """What a docker SDK client offers to DockerRuntime, in memory."""

    def __init__(self) -> None:
        self.api = FakeAPI(self)
        self.containers = FakeContainers(self)
        self.volumes = FakeVolumes(self)
        self.images = FakeImages(self, {"swci/sl:latest", "user-image:1"})
        self.networks = SimpleNamespace(get=self._network)
        self.known_networks = {"swarm-net"}
        self.created: list[FakeContainer] = []
        self.volume_files: dict[str, dict[str, bytes]] = {}
        self.volumes_in_use: set[str] = set()
        self.builds: list[dict] = []
        self.build_chunks: list[dict] = [{"stream": "Step 1/1 : FROM scratch\n"}]
        self.pulls: list[dict] = []
        self.pull_chunks: list[dict] = [{"status": "Pull complete", "id": "abc"}]
        self.pull_error: Exception | None = None
        self.tags: list[tuple] = []
        self.sl_exit: dict[str, int] = {}
        self.ml_exit: dict[str, int | None] = {}
        self.ml_logs: dict[str, str] = {}

    def _network(self, name: str) -> Any:
        if name not in self.known_networks:
            raise FakeNotFound(f"network {name} not found")
        return SimpleNamespace(name=name)

    def by_name(self, name: str) -> FakeContainer:
        """The container of that name created last."""
        return next(c for c in reversed(self.created) if c.name == name)


class FakeImages(set):
    """The image references the fake engine has, answering the SDK's `images.get`."""

    def __init__(self, engine: FakeEngine, refs: set[str]) -> None:
        super().__init__(refs)
        self.engine = engine

    def get(self, ref: str) -> FakeImage:
        if ref not in self:
            raise FakeImageNotFound(f"No such image: {ref}")
        return FakeImage(self.engine, ref)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


# -- tasks and profiles --------------------------------------------------------------------------

PROFILE = """\
groupname: demo
taskrunner: defaulttaskbb.taskdb.sml.hpe
policyuri: ~
resourcemgr: {mgrtype: DOCKER, accessinfo: {accesstype: FROMENV}}
network: swarm-net
apls: {locator: {host: apls.example, port: ~}}
apisrv: {locator: {host: ~, port: ~, service: ~}}
envvars: [SL_LOG_LEVEL: INFO, http_proxy: ~, SHARED: profile]
dns: [10.0.0.53]
nodes:
  - slnodedef:
      idx: 0
      identity:
        - attribute: {aType: KEY, mType: BIND, src: "certs/sl-1-key.pem",
                      tgt: "/swarm-cert/sl-1-key.pem", subPath: null}
        - attribute: {aType: CERT, mType: BIND, src: "/abs/certs/sl-1-cert.pem",
                      tgt: "/swarm-cert/sl-1-cert.pem", subPath: null}
        - attribute: {aType: CAPATH, mType: BIND, src: "/abs/ca/capath",
                      tgt: "/swarm-cert/capath", subPath: null}
      slhostname: sl1
      slhostip: 192.0.2.10
      slport: 16000
      usrhostname: user1
      privatedata: {src: "data/node1", mType: BIND}
      slenvvars: [SHARED: sl-own, SL_LOG_LEVEL: ~]
      usrenvvars: [SCRATCH_DIR: user1, MAX_EPOCHS: 5, DROP_ME: ~]
      usrcontaineropts: [gpus: "device=3,5"]
      sllabels: {swarm-node-type: sl}
      usrlabels: [team-a]
      slnetworkopts: [ip: 172.30.0.11]
      usrnetworkopts: [ip: 172.30.0.21]
  - slnodedef:
      idx: 1
      identity:
        - attribute: {aType: KEY, mType: VOLUME, src: sl2-identity,
                      tgt: "/swarm-cert", subPath: "keys/sl-2-key.pem"}
        - attribute: {aType: CERT, mType: VOLUME, src: sl2-identity,
                      tgt: "/swarm-cert2", subPath: "certs/sl-2-cert.pem"}
        - attribute: {aType: CACERT, mType: BIND, src: "/abs/ca/bundle.pem",
                      tgt: "/swarm-ca/bundle.pem", subPath: null}
      slhostname: sl2
      slhostip: ~
      slfsservice: fs.sl-2.example:16200
      usrhostname: user2
      privatedata: {src: mnist-data, mType: VOLUME}
      slenvvars: null
      usrenvvars: null
      usrcontaineropts:
        - device: ["/dev/kfd", "/dev/dri"]
        - group-add: [video]
        - ipc: host
        - shm-size: 16G
        - cap-add: [SYS_PTRACE]
        - security-opt: ["seccomp=unconfined"]
        - privileged: true
"""

RUN_BODY = {
    "Command": "model/mnist_tf.py --epochs 2",
    "Entrypoint": "python3",
    "WorkingDir": "/tmp/test",
    "Envvars": [{"MODEL_DIR": "model"}, {"MAX_EPOCHS": 2}, {"MIN_PEERS": 2},
                {"DROP_ME": "x"}],
    "PrivateContent": "/tmp/test/",
    "SharedContent": [{"Src": "/home/u/model", "Tgt": "/tmp/test/model", "MType": "BIND"},
                      {"Src": "mnist-msn", "Tgt": "/tmp/test/shared", "MType": "VOLUME"}],
}

BUILD_TASK = TaskDefinition(name="user_env_build", task_type="MAKE_USER_CONTAINER",
                            author="t", prereq="ROOTTASK", outcome="user-image:1",
                            body={"BuildType": "INLINE", "BuildContext": None,
                                  "BuildSteps": ["FROM scratch"]})


def make_ctx(tmp_path: Path, task_type: str, body: dict, *, outcome: str = "out",
             name: str = "task", prereq: TaskDefinition | None = None,
             profile: str = PROFILE, keep: bool = False) -> TaskContext:
    source = tmp_path / "swop" / "profile.yaml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(profile)
    task = TaskDefinition(name=name, task_type=task_type, author="t",
                          prereq=prereq.name if prereq else "ROOTTASK", outcome=outcome,
                          body=body)
    ctx = TaskContext(task=task, profile=parse_profile(profile, str(source)),
                      workdir=tmp_path / "work", volumes=tmp_path / "volumes",
                      envs=tmp_path / "envs", prereq=prereq, sn_ip="172.30.0.2",
                      sn_api_port=30304, keep=keep)
    ctx.logs, ctx.progressed = [], []  # type: ignore[attr-defined]
    ctx.log = ctx.logs.append  # type: ignore[attr-defined]
    ctx.progress = ctx.progressed.append  # type: ignore[attr-defined]
    return ctx


def runtime(engine: FakeEngine, **kwargs: Any) -> DockerRuntime:
    return DockerRuntime(engine, swop_uid="swop-1", ml_user="1000:1000", **kwargs)


def run_ctx(tmp_path: Path, engine: FakeEngine, body: dict | None = None,
            **kwargs: Any) -> TaskContext:
    engine.volumes.create("mnist-data")
    engine.volumes.create("mnist-msn-0")
    engine.volumes.create("mnist-msn-1")
    engine.volumes.create("sl2-identity")
    return make_ctx(tmp_path, "RUN_SWARM", body or RUN_BODY, outcome="swarm_task",
                    name="swarm_task", prereq=BUILD_TASK, **kwargs)


# -- MAKE_USER_CONTAINER -----------------------------------------------------------------------

HPE_STEPS = [
    "FROM tensorflow/tensorflow:2.7.0",
    " ",
    "RUN pip3 install --upgrade pip && pip3 install \\",
    "   keras matplotlib opencv-python pandas protobuf==3.15.6 sklearn",
    " ",
    "RUN mkdir -p /tmp/hpe-swarmcli-pkg",
    "COPY swarmlearning-client.whl /tmp/hpe-swarmcli-pkg/swarmlearning-client.whl",
    "RUN pip3 install /tmp/hpe-swarmcli-pkg/swarmlearning-client.whl",
]


def test_dockerfile_keeps_hpe_lines_blanks_and_continuations():
    dockerfile = render_dockerfile(HPE_STEPS)
    assert dockerfile.text == (
        "FROM tensorflow/tensorflow:2.7.0\n"
        "\n"
        "RUN pip3 install --upgrade pip && pip3 install \\\n"
        "   keras matplotlib opencv-python pandas protobuf==3.15.6 sklearn\n"
        "\n"
        "RUN mkdir -p /tmp/hpe-swarmcli-pkg\n"
        "COPY swarmlearning-client.whl /tmp/hpe-swarmcli-pkg/swarmlearning-client.whl\n"
        "RUN pip3 install /tmp/hpe-swarmcli-pkg/swarmlearning-client.whl\n")
    steps = [(i.first, i.last) for i in dockerfile.instructions]
    assert steps == [(0, 0), (2, 3), (5, 5), (6, 6), (7, 7)]
    assert dockerfile.instructions[1].where == "BuildSteps[2..3]"
    assert dockerfile.instructions[1].text == (
        "RUN pip3 install --upgrade pip && pip3 install keras matplotlib opencv-python "
        "pandas protobuf==3.15.6 sklearn")


def test_dockerfile_skips_comments_and_blank_items_inside_a_continuation():
    dockerfile = render_dockerfile(["# syntax note", "FROM x", "RUN a \\", " ", "# inside",
                                    "  b", None, "ENV K=v"])
    assert [(i.first, i.last, i.text) for i in dockerfile.instructions] == [
        (1, 1, "FROM x"), (2, 5, "RUN a b"), (7, 7, "ENV K=v")]
    assert dockerfile.text.splitlines()[6] == ""
    with pytest.raises(TaskFailed, match="BuildSteps"):
        render_dockerfile([])


def test_build_writes_the_dockerfile_and_tags_the_outcome(tmp_path, engine):
    engine.volume_files["sl-cli-lib"] = {"swarmlearning-client.whl": b"wheel",
                                         "sub/readme.txt": b"hi"}
    engine.volumes.create("sl-cli-lib")
    ctx = make_ctx(tmp_path, "MAKE_USER_CONTAINER",
                   {"BuildContext": "sl-cli-lib", "BuildType": "INLINE",
                    "BuildSteps": HPE_STEPS}, outcome="user-env-tf2.7.0-swop")
    engine.build_chunks = [{"stream": "Step 1/5 : FROM tensorflow/tensorflow:2.7.0\n"},
                           {"stream": " ---> 1234\nSuccessfully built 1234\n"}]
    result = runtime(engine).build_user_container(ctx)
    assert result == "image user-env-tf2.7.0-swop built (5 steps)"
    [build] = engine.builds
    assert build["tag"] == "user-env-tf2.7.0-swop"
    assert build["dockerfile_text"] == render_dockerfile(HPE_STEPS).text
    assert build["files"] == sorted(["sub", "sub/readme.txt", dr.DOCKERFILE_NAME,
                                     "swarmlearning-client.whl"])
    assert build["rm"] and build["decode"]
    assert build["labels"]["swci.task"] == "task"
    assert "Successfully built 1234" in ctx.logs
    assert ctx.progressed[-1] == "building user-env-tf2.7.0-swop: step 1/5"
    helper = next(c for c in engine.created if c.labels["swci.role"] == "helper")
    assert helper.removed and helper.status == "created"
    assert not list((tmp_path / "work").iterdir())


def test_build_failure_names_the_step_and_keeps_the_log_tail(tmp_path, engine):
    ctx = make_ctx(tmp_path, "MAKE_USER_CONTAINER",
                   {"BuildContext": None, "BuildType": "INLINE", "BuildSteps": HPE_STEPS})
    engine.build_chunks = [
        {"stream": "Step 1/5 : FROM tensorflow/tensorflow:2.7.0\n ---> 1234\n"},
        {"stream": "Step 2/5 : RUN pip3 install --upgrade pip && pip3 install keras\n"},
        {"stream": "ERROR: No matching distribution found for sklearn\n"},
        {"error": "The command '/bin/sh -c pip3 install' returned a non-zero code: 1",
         "errorDetail": {"code": 1}}]
    with pytest.raises(TaskFailed) as failed:
        runtime(engine).build_user_container(ctx)
    assert failed.value.description.startswith(
        "build of out failed at step 2/5 (BuildSteps[2..3]: RUN pip3 install --upgrade pip")
    assert len(failed.value.description.encode()) <= 160
    assert "No matching distribution found for sklearn" in failed.value.detail
    assert failed.value.detail.endswith("returned a non-zero code: 1")


def test_remote_build_and_missing_context_volume_are_refused(tmp_path, engine):
    remote = make_ctx(tmp_path, "MAKE_USER_CONTAINER",
                      {"BuildContext": None, "BuildType": "REMOTE",
                       "BuildSteps": ["https://example.com/Dockerfile"]})
    with pytest.raises(TaskFailed, match="REMOTE is not supported"):
        runtime(engine).build_user_container(remote)
    missing = make_ctx(tmp_path, "MAKE_USER_CONTAINER",
                       {"BuildContext": "sl-cli-lib", "BuildType": "INLINE",
                        "BuildSteps": ["FROM scratch"]})
    with pytest.raises(TaskFailed, match="volume sl-cli-lib does not exist"):
        runtime(engine).build_user_container(missing)
    assert engine.builds == []


# -- PULL_IMAGE --------------------------------------------------------------------------------

PULL_BODY = {"Tag": "2.7.0", "RepoName": "tensorflow-tensorflow",
             "OrgAndReg": "hub.docker.hpecorp.net/hub/", "Auth": None}


def test_pull_names_org_repo_and_tag_and_tags_the_outcome(tmp_path, engine):
    ctx = make_ctx(tmp_path, "PULL_IMAGE",
                   {**PULL_BODY, "Auth": {"Username": "alice", "Password": "s3cret"}},
                   outcome="tf-image:2.7")
    result = runtime(engine).pull_image(ctx)
    [pull] = engine.pulls
    assert (pull["repository"], pull["tag"]) == ("hub.docker.hpecorp.net/hub/tensorflow-tensorflow",
                                                 "2.7.0")
    assert pull["auth_config"] == {"username": "alice", "password": "s3cret"}
    assert engine.tags == [("hub.docker.hpecorp.net/hub/tensorflow-tensorflow:2.7.0",
                            "tf-image", "2.7")]
    assert result.startswith("image hub.docker.hpecorp.net/hub/tensorflow-tensorflow:2.7.0 pulled")
    assert "abc Pull complete" in ctx.logs


def test_image_reference_and_its_registry():
    assert image_ref({"OrgAndReg": "registry.local:5000/team", "RepoName": "app",
                      "Tag": 1}) == ("registry.local:5000/team/app", "1")
    assert image_ref({"OrgAndReg": None, "RepoName": "python", "Tag": None}) == ("python",
                                                                                 "latest")
    assert registry_of("registry.local:5000/team/app") == "registry.local:5000"
    assert registry_of("localhost/app") == "localhost"
    assert registry_of("library/python") == "docker.io"
    with pytest.raises(TaskFailed, match="RepoName is empty"):
        image_ref({"OrgAndReg": "quay.io/", "RepoName": " ", "Tag": "1"})


def test_pull_reads_credentials_from_a_config_json(tmp_path, engine):
    config = tmp_path / "swop" / "docker-config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "https://hub.docker.hpecorp.net": {"auth": base64.b64encode(b"bob:pa:ss").decode()}}}))
    ctx = make_ctx(tmp_path, "PULL_IMAGE", {**PULL_BODY, "Auth": "docker-config.json"},
                   outcome="hub.docker.hpecorp.net/hub/tensorflow-tensorflow:2.7.0")
    runtime(engine).pull_image(ctx)
    assert engine.pulls[0]["auth_config"] == {"username": "bob", "password": "pa:ss"}
    assert engine.tags == []
    hub = make_ctx(tmp_path, "PULL_IMAGE", {"Tag": "3", "RepoName": "library/python",
                                            "OrgAndReg": None, "Auth": str(config)})
    runtime(engine).pull_image(hub)
    assert engine.pulls[1]["repository"] == "library/python"
    assert engine.pulls[1]["auth_config"] == {"username": "hub", "password": "pw"}
    other = make_ctx(tmp_path, "PULL_IMAGE",
                     {**PULL_BODY, "OrgAndReg": "quay.io/org", "Auth": str(config)})
    with pytest.raises(TaskFailed, match="holds no credentials for quay.io"):
        runtime(engine).pull_image(other)


def test_pull_failure_carries_the_registry_reason(tmp_path, engine):
    ctx = make_ctx(tmp_path, "PULL_IMAGE", PULL_BODY)
    engine.pull_error = FakeNotFound(
        "404 Client Error", "manifest for hub.docker.hpecorp.net/hub/tensorflow-tensorflow:2.7.0"
        " not found: manifest unknown")
    with pytest.raises(TaskFailed) as failed:
        runtime(engine).pull_image(ctx)
    assert failed.value.description.startswith(
        "pull hub.docker.hpecorp.net/hub/tensorflow-tensorflow:2.7.0 failed: manifest for")
    engine.pull_error = None
    engine.pull_chunks = [{"status": "Pulling fs layer", "id": "l1"},
                          {"error": "unauthorized: authentication required"}]
    with pytest.raises(TaskFailed, match="failed: unauthorized: authentication required"):
        runtime(engine).pull_image(ctx)


# -- MAKE_SWARM_USER_CONTENT -------------------------------------------------------------------


def test_swarm_content_fills_one_volume_per_node(tmp_path, engine):
    source = tmp_path / "mnist_tf.py"
    source.write_text("print('train')\n")
    engine.volumes.create("mnist-msn-1")
    engine.volume_files["mnist-msn-1"] = {"stale.txt": b"old"}
    engine.volumes_in_use.add("mnist-msn-1")
    ctx = make_ctx(tmp_path, "MAKE_SWARM_USER_CONTENT",
                   {"ContentType": "SWARMCONTENT", "OpsList": [
                       {"Operation": "DOWNLOAD", "Target": str(source),
                        "Options": [{"Out": "model/mnist_tf.py"}]}]}, outcome="mnist-msn")
    result = runtime(engine).make_content(ctx)
    assert result == "content ready in 2 volume(s): mnist-msn-0, mnist-msn-1"
    for name in ("mnist-msn-0", "mnist-msn-1"):
        assert engine.volume_files[name] == {"model/mnist_tf.py": b"print('train')\n"}
    assert engine.volumes.get("mnist-msn-0").labels["swci.role"] == "content"
    assert "volume mnist-msn-1 is in use; copying the new files over its old ones" in ctx.logs
    assert all(c.removed for c in engine.created)
    bad = make_ctx(tmp_path, "MAKE_SWARM_USER_CONTENT",
                   {"ContentType": "BUILDCONTENT", "OpsList": [
                       {"Operation": "EXTRACT", "Target": "missing.tar"}]})
    with pytest.raises(TaskFailed, match="OpsList\\[0\\] EXTRACT"):
        runtime(engine).make_content(bad)


# -- RUN_SWARM: the containers -------------------------------------------------------------------


def test_usrcontaineropts_map_to_docker_options():
    assert gpu_request("all") == {"Driver": "", "Count": -1, "DeviceIDs": [],
                                  "Capabilities": [["gpu"]]}
    assert gpu_request("device=3,5")["DeviceIDs"] == ["3", "5"]
    assert gpu_request('"device=0,2",capabilities=utility') == {
        "Driver": "", "Count": 0, "DeviceIDs": ["0", "2"],
        "Capabilities": [["gpu", "utility"]]}
    assert gpu_request(2)["Count"] == 2
    assert container_options({"device": "/dev/kfd,/dev/dri", "privileged": "False",
                              "shm_size": "8G", "gpus": None}) == {
        "devices": ["/dev/kfd", "/dev/dri"], "privileged": False, "shm_size": "8G"}
    with pytest.raises(TaskFailed, match="cannot read 'seven'"):
        gpu_request("seven")
    with pytest.raises(TaskFailed, match="option 'memory' is not supported"):
        container_options({"memory": "4g"})
    with pytest.raises(TaskFailed, match="expected True or False"):
        container_options({"privileged": "maybe"})


def test_run_swarm_starts_sl_and_ml_pairs(tmp_path, engine):
    ctx = run_ctx(tmp_path, engine)
    result = runtime(engine).run_swarm(ctx)
    assert result == "2 SL/ML pairs finished"
    names = [c.name for c in engine.created]
    assert names == ["sl1", "sl2", "user1", "user2"]
    sl1 = engine.by_name("sl1").spec
    assert sl1["image"] == "swci/sl:latest"
    assert sl1["entrypoint"] == ["python3", "-m", "swarmlearning.sl"]
    channel = next(m["Source"] for m in sl1["mounts"] if m["Target"] == "/swarm-channel")
    assert sl1["command"] == [
        "--sn-ip", "172.30.0.2", "--sn-api-port", "30304", "--host-ip", "172.30.0.11",
        "--sl-fs-port", "30305", "--cert", "/swarm-cert/sl-1-cert.pem",
        "--key", "/swarm-cert/sl-1-key.pem", "--capath", "/swarm-cert/capath",
        "--data-dir", "/platform/swarm/data", "--name", "sl1",
        "--channel", "/swarm-channel/ch.sock"]
    assert sl1["ports"] == {"30305/tcp": 16000}
    assert sl1["hostname"] == "sl1" and sl1["network"] == "swarm-net"
    assert sl1["networking_config"] == {"swarm-net": {"IPAMConfig": {"IPv4Address":
                                                                     "172.30.0.11"}}}
    assert sl1["labels"]["swarm-node-type"] == "sl"
    assert sl1["labels"]["swci.swop"] == "swop-1" and sl1["labels"]["swci.role"] == "sl"
    assert sl1["dns"] == ["10.0.0.53"] and sl1["user"] == "1000:1000"
    assert engine.volumes.get(channel).kwargs["driver_opts"]["type"] == "tmpfs"
    sl2 = engine.by_name("sl2").spec
    assert sl2["ports"] == {"30305/tcp": 16200}
    assert sl2["command"][5] == "sl2"
    user1 = engine.by_name("user1").spec
    assert user1["image"] == "user-image:1"
    assert user1["entrypoint"] == ["python3"]
    assert user1["command"] == ["model/mnist_tf.py", "--epochs", "2"]
    assert user1["working_dir"] == "/tmp/test"
    assert {"Type": "volume", "Source": channel, "Target": "/swarm-channel",
            "ReadOnly": False} in user1["mounts"]
    assert user1["labels"]["team-a"] == "" and user1["labels"]["swci.role"] == "ml"
    assert user1["networking_config"] == {"swarm-net": {"IPAMConfig": {"IPv4Address":
                                                                       "172.30.0.21"}}}
    assert user1["device_requests"] == [{"Driver": "", "Count": 0, "DeviceIDs": ["3", "5"],
                                         "Capabilities": [["gpu"]]}]
    user2 = engine.by_name("user2").spec
    assert user2["devices"] == ["/dev/kfd", "/dev/dri"]
    assert user2["group_add"] == ["video"] and user2["cap_add"] == ["SYS_PTRACE"]
    assert user2["security_opt"] == ["seccomp=unconfined"]
    assert user2["ipc_mode"] == "host" and user2["shm_size"] == "16G"
    assert user2["privileged"] is True
    assert "networking_config" not in user2 and "device_requests" not in user2
    assert ctx.progressed[0] == "waiting for SL sl1"


def test_environment_precedence(tmp_path, engine):
    ctx = run_ctx(tmp_path, engine)
    runtime(engine).run_swarm(ctx)
    sl1 = engine.by_name("sl1").spec["environment"]
    assert sl1 == {"SHARED": "sl-own", "SN_NODE_IP": "172.30.0.2",
                   "SN_API_SERVER_PORT": "30304", "PYTHONUNBUFFERED": "1"}
    sl2 = engine.by_name("sl2").spec["environment"]
    assert sl2["SL_LOG_LEVEL"] == "INFO" and sl2["SHARED"] == "profile"
    assert "http_proxy" not in sl2
    user1 = engine.by_name("user1").spec["environment"]
    assert user1 == {"PYTHONUNBUFFERED": "1", "MODEL_DIR": "model", "MAX_EPOCHS": "5",
                     "MIN_PEERS": "2", "SCRATCH_DIR": "user1",
                     "SL_REQUEST_CHANNEL": "/swarm-channel/ch.sock"}
    user2 = engine.by_name("user2").spec["environment"]
    assert user2["MAX_EPOCHS"] == "2" and user2["DROP_ME"] == "x"


def test_mounts_for_private_shared_and_identity_content(tmp_path, engine):
    ctx = run_ctx(tmp_path, engine)
    engine.volumes.create("mnist-msn")
    engine.volumes.create("mnist-data-1")  # a node's own copy wins over the plain name
    runtime(engine).run_swarm(ctx)
    profile_dir = tmp_path / "swop"

    def mounts(name: str) -> list[tuple]:
        return [(m["Type"], m["Source"], m["Target"], m["ReadOnly"])
                for m in engine.by_name(name).spec["mounts"]
                if m["Target"] not in ("/swarm-channel", "/platform/swarm/data")]

    assert mounts("user1") == [
        ("bind", str(profile_dir / "data" / "node1"), "/tmp/test", False),
        ("bind", "/home/u/model", "/tmp/test/model", False),
        ("volume", "mnist-msn-0", "/tmp/test/shared", False)]
    assert mounts("user2") == [
        ("volume", "mnist-data-1", "/tmp/test", False),
        ("bind", "/home/u/model", "/tmp/test/model", False),
        ("volume", "mnist-msn-1", "/tmp/test/shared", False)]
    assert mounts("sl1") == [
        ("bind", str(profile_dir / "certs" / "sl-1-key.pem"), "/swarm-cert/sl-1-key.pem", True),
        ("bind", "/abs/certs/sl-1-cert.pem", "/swarm-cert/sl-1-cert.pem", True),
        ("bind", "/abs/ca/capath", "/swarm-cert/capath", True)]
    assert mounts("sl2") == [
        ("volume", "sl2-identity", "/swarm-cert", True),
        ("volume", "sl2-identity", "/swarm-cert2", True),
        ("bind", "/abs/ca/bundle.pem", "/swarm-ca/bundle.pem", True)]
    sl2 = engine.by_name("sl2").spec["command"]
    assert sl2[sl2.index("--key") + 1] == "/swarm-cert/keys/sl-2-key.pem"
    assert sl2[sl2.index("--cert") + 1] == "/swarm-cert2/certs/sl-2-cert.pem"
    assert sl2[sl2.index("--cacert") + 1] == "/swarm-ca/bundle.pem"
    data = next(m for m in engine.by_name("sl1").spec["mounts"]
                if m["Target"] == "/platform/swarm/data")
    assert Path(data["Source"]).is_dir() and Path(data["Source"]).parent == ctx.workdir


def test_missing_volume_and_missing_private_data_are_named(tmp_path, engine):
    body = {**RUN_BODY, "SharedContent": [{"Src": "nowhere", "Tgt": "/x", "MType": "VOLUME"}]}
    with pytest.raises(TaskFailed, match=r"SharedContent\[0\]: volume nowhere does not exist"):
        runtime(engine).run_swarm(run_ctx(tmp_path, engine, body))
    no_private = PROFILE.replace('privatedata: {src: "data/node1", mType: BIND}',
                                 "privatedata: ~")
    with pytest.raises(TaskFailed, match=r"nodes\[0\].slnodedef.privatedata"):
        runtime(engine).run_swarm(run_ctx(tmp_path, engine, profile=no_private))
    assert engine.created == []


def test_run_swarm_needs_the_image_of_a_build_or_pull_prereq(tmp_path, engine):
    content = TaskDefinition(name="content", task_type="MAKE_SWARM_USER_CONTENT", author="t",
                             prereq="ROOTTASK", outcome="vol", body={})
    for prereq, message in ((None, "no ML image: the task has no Prereq"),
                            (content, "Prereq content is a MAKE_SWARM_USER_CONTENT task")):
        ctx = make_ctx(tmp_path, "RUN_SWARM", RUN_BODY, prereq=prereq)
        with pytest.raises(TaskFailed, match=message):
            runtime(engine).run_swarm(ctx)
    engine.images.discard("user-image:1")
    with pytest.raises(TaskFailed, match="ML image user-image:1 .Outcome of user_env_build. is "
                                         "not on this host"):
        runtime(engine).run_swarm(run_ctx(tmp_path, engine))
    assert engine.created == []


def test_a_failed_ml_ends_the_task_with_its_log_tail(tmp_path, engine):
    engine.ml_exit["user2"] = 3
    engine.ml_logs["user2"] = "\n".join(f"epoch {i}" for i in range(100)) + "\nValueError: bad"
    with pytest.raises(TaskFailed) as failed:
        runtime(engine).run_swarm(run_ctx(tmp_path, engine))
    assert failed.value.description == "ML user2 exited with code 3"
    assert failed.value.detail.endswith("epoch 99\nValueError: bad")
    assert "epoch 50" not in failed.value.detail


def test_an_sl_that_dies_fails_the_task(tmp_path, engine):
    engine.sl_exit["sl2"] = 1
    with pytest.raises(TaskFailed) as failed:
        runtime(engine).run_swarm(run_ctx(tmp_path, engine))
    assert failed.value.description == "SL sl2 exited with code 1 before it was ready"
    assert "cannot reach the SN" in failed.value.detail
    assert not any(c.labels.get("swci.role") == "ml" for c in engine.created)

    engine.sl_exit.clear()
    engine.ml_exit["user1"] = None

    def sl1_dies() -> None:
        engine.by_name("sl1").status, engine.by_name("sl1").exit_code = "exited", 2

    thread = threading.Timer(0.2, sl1_dies)
    thread.start()
    with pytest.raises(TaskFailed) as failed:
        runtime(engine).run_swarm(run_ctx(tmp_path, engine))
    thread.join()
    assert failed.value.description == "SL sl1 exited with code 2 while ML user1 was running"


def test_stop_and_run_timeout_end_the_wait(tmp_path, engine):
    engine.ml_exit["user1"] = None
    ctx = run_ctx(tmp_path, engine)
    threading.Timer(0.1, ctx.stop.set).start()
    with pytest.raises(TaskFailed, match="^stopped$"):
        runtime(engine).run_swarm(ctx)
    with pytest.raises(TaskFailed, match="1 ML container.s. still running after 0.05 s"):
        runtime(engine, run_timeout=0.05).run_swarm(run_ctx(tmp_path, engine))


def test_a_foreign_container_name_is_not_taken_over(tmp_path, engine):
    engine.containers.create("swci/sl:latest", name="sl1", labels={"owner": "someone"})
    with pytest.raises(TaskFailed, match="a container named sl1 already exists"):
        runtime(engine).run_swarm(run_ctx(tmp_path, engine))
    engine.containers.items["sl1"].labels = {"swci.swop": "swop-1", "swci.task": "old"}
    assert runtime(engine).run_swarm(run_ctx(tmp_path, engine)) == "2 SL/ML pairs finished"


# -- cleanup -----------------------------------------------------------------------------------


def test_cleanup_removes_only_this_tasks_containers(tmp_path, engine):
    engine.ml_exit["user1"] = None
    other_task = engine.containers.create("swci/sl:latest", name="old",
                                          labels={"swci.swop": "swop-1", "swci.task": "other"})
    other_swop = engine.containers.create("swci/sl:latest", name="peer",
                                          labels={"swci.swop": "swop-2",
                                                  "swci.task": "swarm_task"})
    for container in (other_task, other_swop):
        container.status = "running"
    rt = runtime(engine, run_timeout=0.02)
    ctx = run_ctx(tmp_path, engine)
    with pytest.raises(TaskFailed):
        rt.run_swarm(ctx)
    ours = [engine.by_name(n) for n in ("sl1", "sl2", "user1", "user2")]
    rt.cleanup(ctx)
    assert all(c.removed for c in ours)
    assert engine.by_name("user1").stopped and engine.by_name("sl1").stopped
    assert not engine.by_name("user2").stopped  # it had exited already
    assert not other_task.removed and not other_task.stopped
    assert not other_swop.removed and not other_swop.stopped
    assert [v for v in engine.volumes.items if v.endswith("-channel")] == []
    assert "mnist-msn-0" in engine.volumes.items
    assert not any(p.name.startswith("docker-") for p in ctx.workdir.iterdir())
    rt.cleanup(ctx)  # everything is gone already


def test_cleanup_with_keep_stops_but_keeps(tmp_path, engine):
    engine.ml_exit["user1"] = None
    rt = runtime(engine, run_timeout=0.02)
    ctx = run_ctx(tmp_path, engine, keep=True)
    with pytest.raises(TaskFailed):
        rt.run_swarm(ctx)
    rt.cleanup(ctx)
    ours = [engine.by_name(n) for n in ("sl1", "sl2", "user1", "user2")]
    assert not any(c.removed for c in ours)
    assert engine.by_name("sl1").stopped and engine.by_name("user1").stopped
    assert len([v for v in engine.volumes.items if v.endswith("-channel")]) == 2
    assert (ctx.workdir / "docker-sl0-data").is_dir()


# -- availability and a real engine -------------------------------------------------------------


def test_docker_available_reports_a_missing_sdk(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "docker", None)
    available, reason = docker_available()
    assert available is False and "Docker SDK for Python is not installed" in reason
    with pytest.raises(TaskFailed, match="needs the Docker SDK"):
        DockerRuntime().client  # noqa: B018


def test_build_on_a_real_engine(tmp_path, monkeypatch):
    available, reason = docker_available()
    if not available:
        pytest.skip(reason)
    import docker

    monkeypatch.setattr(dr, "sdk_errors", lambda: docker.errors)
    client = docker.from_env()
    rt = DockerRuntime(client, swop_uid="swci-test")
    good = make_ctx(tmp_path, "MAKE_USER_CONTAINER",
                    {"BuildContext": None, "BuildType": "INLINE",
                     "BuildSteps": ["FROM scratch", " ", "LABEL swci.test=yes \\",
                                    "  swci.other=1"]},
                    outcome="swci-test-build:1")
    bad = make_ctx(tmp_path, "MAKE_USER_CONTAINER",
                   {"BuildContext": None, "BuildType": "INLINE",
                    "BuildSteps": ["FROM scratch", "RUN true"]}, outcome="swci-test-bad:1")
    try:
        assert rt.build_user_container(good) == "image swci-test-build:1 built (2 steps)"
        assert client.images.get("swci-test-build:1").labels["swci.test"] == "yes"
        with pytest.raises(TaskFailed, match=r"step 2/2 \(BuildSteps\[1\]: RUN true\)"):
            rt.build_user_container(bad)
        rt.cleanup(good)
        rt.cleanup(bad)
    finally:
        for ref in ("swci-test-build:1", "swci-test-bad:1"):
            try:
                client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass
