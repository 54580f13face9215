"""The process runtime's parts that need no swarm: user environments built from BuildSteps,
PULL_IMAGE's refusal, and what cleanup keeps with SWOP_KEEP_CONTAINERS."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from swarmlearning.swop.profile import parse_profile
from swarmlearning.swop.runtimes.process import ProcessRuntime, safe_name, visible_gpus
from swarmlearning.swop.tasks import TaskContext, TaskDefinition, TaskFailed, clip
from swarmlearning.swop.userenv import EnvBuilder, UserEnv, join_steps
from tests.test_swop import marker_wheel

PROFILE = Path(__file__).parent / "data" / "swop" / "profile_two_nodes.yaml"


def builder(tmp_path: Path, context: Path | None) -> tuple[EnvBuilder, list[str]]:
    said: list[str] = []
    return EnvBuilder(tmp_path / "envs" / "img", context, said.append,
                      tmp_path / "build.log"), said


def test_steps_join_continuations_and_drop_blank_items() -> None:
    steps = ["FROM x", " ", "RUN a \\", "   b \\", "  c", "", "ENV A=1"]
    assert join_steps(steps) == [(0, "FROM x"), (2, "RUN a b c"), (6, "ENV A=1")]


def test_a_build_installs_into_its_own_environment(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    marker_wheel(context)
    build, said = builder(tmp_path, context)
    env = build.build([
        "FROM python:3.11", "COPY swci_digits_marker-0.1-py3-none-any.whl /tmp/pkg/",
        "RUN apt-get update && pip3 install --upgrade pip \\",
        "  /tmp/pkg/swci_digits_marker-0.1-py3-none-any.whl",
        "RUN pip install /tmp/hpe/swarmlearning-client-py3-none-manylinux_2_24_x86_64.whl",
        "ENV MODE=swarm LEVEL=2", "WORKDIR /tmp"])
    assert env == UserEnv.load(tmp_path / "envs" / "img")
    assert env.env == {"MODE": "swarm", "LEVEL": "2"}
    probe = subprocess.run([str(env.python), "-c", "import swci_digits_marker, swarmlearning, "
                            "sys; print(swci_digits_marker.__file__); print(sys.prefix)"],
                           capture_output=True, text=True, check=True)
    where, prefix = probe.stdout.split()
    assert where.startswith(str(env.path)) and prefix == str(env.path)
    # the SWOP's own interpreter did not get the package
    assert subprocess.run(["python3", "-c", "import swci_digits_marker"], capture_output=True,
                          cwd=tmp_path).returncode != 0
    joined = "\n".join(said)
    assert "BuildSteps[0]: FROM skipped" in joined
    assert "RUN apt-get update skipped" in joined
    assert "swarmlearning-client-py3-none-manylinux_2_24_x86_64.whl skipped" in joined
    assert "BuildSteps[6]: WORKDIR skipped" in joined


def test_a_failed_pip_install_names_the_step_and_leaves_nothing(tmp_path: Path) -> None:
    build, _ = builder(tmp_path, None)
    with pytest.raises(TaskFailed) as failure:
        build.build(["RUN pip install --no-index /nonexistent/nothing-1.0-py3-none-any.whl"])
    assert failure.value.description.startswith("BuildSteps[0]: pip install failed (exit ")
    assert "nothing-1.0" in failure.value.detail
    assert not (tmp_path / "envs" / "img").exists()


@pytest.mark.parametrize(("step", "message"), [
    ("COPY ../../etc/passwd /tmp/", "outside the BuildContext"),
    ("COPY a.txt ../../escaped.txt", "destination ../../escaped.txt is outside the environment"),
    ("COPY link.txt /tmp/", "link.txt is outside the BuildContext"),
    ("COPY l*.txt /tmp/", "link.txt leads outside the BuildContext"),
    ("COPY missing.whl /tmp/", "is not in the BuildContext"),
    ("COPY onlyone", "needs a source and a destination"),
    ("ENV", "ENV needs NAME=VALUE"),
])
def test_bad_steps_are_refused_with_their_place(tmp_path: Path, step: str, message: str) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "a.txt").write_text("a")
    (tmp_path / "secret.txt").write_text("not for the build")
    (context / "link.txt").symlink_to(tmp_path / "secret.txt")
    build, _ = builder(tmp_path, context)
    with pytest.raises(TaskFailed, match=message) as failure:
        build.build(["FROM x", step])
    assert failure.value.description.startswith("BuildSteps[1]: ")
    assert not (tmp_path / "envs" / "escaped.txt").exists()


def test_copy_without_the_context_volume_says_which_volume(tmp_path: Path) -> None:
    build, _ = builder(tmp_path, None)
    build.missing_context = "sl-cli-lib"
    with pytest.raises(TaskFailed, match="BuildContext volume sl-cli-lib, which is not on"):
        build.build(["COPY a.whl /tmp/"])


def context(tmp_path: Path, task_type: str, body: dict, keep: bool = False) -> TaskContext:
    task = TaskDefinition(name="t", task_type=task_type, author="a", prereq="ROOTTASK",
                          outcome="org/img:1.0", body=body)
    return TaskContext(task=task, profile=parse_profile(PROFILE.read_text(), str(PROFILE)),
                       workdir=tmp_path / "tasks" / "1-t", volumes=tmp_path / "volumes",
                       envs=tmp_path / "envs", keep=keep, stop=threading.Event())


def test_pull_image_needs_the_docker_runtime(tmp_path: Path) -> None:
    with pytest.raises(TaskFailed, match="PULL_IMAGE is not supported by the process runtime"):
        ProcessRuntime().pull_image(context(tmp_path, "PULL_IMAGE", {}))


def test_remote_builds_are_refused(tmp_path: Path) -> None:
    ctx = context(tmp_path, "MAKE_USER_CONTAINER", {"BuildType": "REMOTE", "BuildSteps": ["x"]})
    with pytest.raises(TaskFailed, match="REMOTE is not supported"):
        ProcessRuntime().build_user_container(ctx)


@pytest.mark.parametrize("keep", [False, True])
def test_cleanup_keeps_logs_and_with_keep_the_sandboxes(tmp_path: Path, keep: bool) -> None:
    ctx = context(tmp_path, "RUN_SWARM", {}, keep=keep)
    (ctx.workdir / "node0" / "sl").mkdir(parents=True)
    (ctx.workdir / "logs").mkdir()
    (ctx.workdir / "logs" / "sl1.log").write_text("kept")
    ProcessRuntime().cleanup(ctx)
    assert (ctx.workdir / "logs" / "sl1.log").read_text() == "kept"
    assert (ctx.workdir / "node0").exists() is keep


def test_outcomes_become_directory_names_and_clips_keep_the_cause() -> None:
    assert safe_name("hub.example.net/hpe/user-env:1.0") == "hub.example.net_hpe_user-env_1.0"
    assert safe_name("..") == "_"
    text = "\n".join(f"line {i}" for i in range(400))
    clipped = clip(text, 100)
    assert len(clipped.encode()) <= 100 and clipped.endswith("line 399")
    assert clip("é" * 100, 11).endswith("…") and len(clip("é" * 100, 11).encode()) <= 11


def test_env_expands_earlier_values_and_the_swop_environment(tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin")
    build, _ = builder(tmp_path, None)
    env = build.build(["ENV TOOLS=/opt/tools", "ENV PATH=${TOOLS}/bin:$PATH NONE=$NOT_SET."])
    assert env.env == {"TOOLS": "/opt/tools", "PATH": "/opt/tools/bin:/usr/bin", "NONE": "."}


def test_gpus_become_cuda_visible_devices() -> None:
    assert visible_gpus({}) is None
    assert visible_gpus({"gpus": "all"}) is None
    assert visible_gpus({"gpus": "2"}) == "0,1"
    assert visible_gpus({"gpus": '"device=3,5"'}) == "3,5"
    with pytest.raises(TaskFailed, match="expected all, a count or device=IDS"):
        visible_gpus({"gpus": "many"})
