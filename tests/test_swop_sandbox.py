"""swarmlearning.swop.sandbox: HPE container paths laid out under a per-task sandbox root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmlearning.swop.sandbox import Mount, Sandbox, SandboxError, normalise


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below `root` (not following symlinks) with its kind, content and mtime."""
    result: dict[str, tuple] = {".": ("dir", root.stat().st_mtime_ns)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            info = path.lstat()
            if path.is_symlink():
                result[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif path.is_dir():
                result[str(path.relative_to(root))] = ("dir", info.st_mtime_ns)
            else:
                result[str(path.relative_to(root))] = ("file", path.read_bytes(),
                                                       info.st_mtime_ns)
    return result


def outside(tmp: Path, root: Path) -> set[str]:
    """Every path below `tmp` that is not inside `root`."""
    seen = set()
    for directory, dirs, files in os.walk(tmp):
        for name in dirs + files:
            path = Path(directory, name)
            if path != root and root not in path.parents:
                seen.add(str(path))
    return seen


@pytest.fixture
def mnist(tmp_path: Path) -> dict[str, Path]:
    """Host side of HPE's mnist example: a project dir (private data), a model dir, certs."""
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "data" / "train.csv").write_text("1,2,3\n")
    (proj / "model").mkdir()
    (proj / "model" / "stale.py").write_text("# shadowed by the shared model mount\n")
    (proj / "README.md").write_text("mnist\n")
    model = tmp_path / "shared-model"
    model.mkdir()
    (model / "mnist_tf.py").write_text("print('train')\n")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "sl-1-key.pem").write_text("KEY\n")
    (certs / "sl-1-cert.pem").write_text("CERT\n")
    cacerts = tmp_path / "cacerts"
    cacerts.mkdir()
    (cacerts / "ca.pem").write_text("CA\n")
    return {"proj": proj, "model": model, "certs": certs, "cacerts": cacerts,
            "root": tmp_path / "sandbox"}


def mnist_sandbox(paths: dict[str, Path]) -> Sandbox:
    sandbox = Sandbox(paths["root"])
    sandbox.add(Mount("/tmp/test/", paths["proj"]))                       # PrivateContent
    sandbox.add(Mount("/tmp/test/model", paths["model"], read_only=True))  # SharedContent
    sandbox.add(Mount("/swarm-cert/sl-1-key.pem", paths["certs"] / "sl-1-key.pem", True))
    sandbox.add(Mount("/swarm-cert/sl-1-cert.pem", paths["certs"] / "sl-1-cert.pem", True))
    sandbox.add(Mount("/swarm-cert/capath", paths["cacerts"], True))
    return sandbox


def sources(paths: dict[str, Path]) -> dict[str, dict[str, tuple]]:
    return {name: snapshot(paths[name]) for name in ("proj", "model", "certs", "cacerts")}


def test_mnist_layout_materialises_and_reads_through(mnist, tmp_path):
    before = sources(mnist)
    others = outside(tmp_path, mnist["root"])
    sandbox = mnist_sandbox(mnist)
    sandbox.materialize()
    root = mnist["root"]

    work = sandbox.host_path("/tmp/test")
    assert work == root / "tmp" / "test"
    assert work.is_dir() and not work.is_symlink()      # mirrors proj, holds the model mount
    assert (work / "data" / "train.csv").read_text() == "1,2,3\n"
    assert (work / "README.md").read_text() == "mnist\n"
    assert os.readlink(work / "data") == str(mnist["proj"] / "data")
    assert os.readlink(work / "model") == str(mnist["model"])
    assert sorted(os.listdir(work / "model")) == ["mnist_tf.py"]  # proj/model is shadowed
    assert (root / "swarm-cert").is_dir() and not (root / "swarm-cert").is_symlink()
    assert (root / "swarm-cert" / "sl-1-key.pem").read_text() == "KEY\n"
    assert os.readlink(root / "swarm-cert" / "sl-1-key.pem") == str(mnist["certs"] /
                                                                    "sl-1-key.pem")
    assert (root / "swarm-cert" / "capath" / "ca.pem").read_text() == "CA\n"

    assert sources(mnist) == before                       # nothing created in any source
    assert outside(tmp_path, root) == others              # nothing created outside the root
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            if path.is_symlink():                         # every link names a source entry
                target = Path(os.readlink(path))
                assert target.is_absolute()
                assert any(target == mnist[key] or mnist[key] in target.parents
                           for key in ("proj", "model", "certs", "cacerts"))


def test_model_mount_inside_private_source_as_in_hpe_example(tmp_path):
    """HPE mounts <PROJECT> on /tmp/test and <PROJECT>/model on /tmp/test/model."""
    proj = tmp_path / "proj"
    (proj / "model").mkdir(parents=True)
    (proj / "model" / "mnist_tf.py").write_text("x")
    before = snapshot(proj)
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/tmp/test", proj))
    sandbox.add(Mount("/tmp/test/model", proj / "model"))
    sandbox.materialize()
    assert (sandbox.host_path("/tmp/test/model") / "mnist_tf.py").read_text() == "x"
    assert snapshot(proj) == before


def test_writes_inside_mounts_land_in_sources_like_bind_mounts(mnist):
    sandbox = mnist_sandbox(mnist)
    sandbox.materialize()
    (sandbox.host_path("/tmp/test/data") / "new.txt").write_text("written")
    assert (mnist["proj"] / "data" / "new.txt").read_text() == "written"

    scratch = sandbox.ensure_dir("/tmp/test/user1/out")     # SCRATCH_DIR under WorkingDir
    assert scratch == mnist["root"] / "tmp" / "test" / "user1" / "out"
    (scratch / "model.h5").write_text("weights")
    assert (mnist["proj"] / "user1" / "out" / "model.h5").read_text() == "weights"
    assert os.readlink(mnist["root"] / "tmp" / "test" / "user1") == str(mnist["proj"] / "user1")
    assert sandbox.ensure_dir("/tmp/test/user1/out") == scratch  # idempotent

    plain = sandbox.ensure_dir("/opt/work/dir")               # outside every mount
    assert plain.is_dir() and not plain.is_symlink() and mnist["root"] in plain.parents
    assert sandbox.ensure_dir("/tmp/test") == sandbox.host_path("/tmp/test")

    with pytest.raises(SandboxError, match="read-only mount '/tmp/test/model'"):
        sandbox.ensure_dir("/tmp/test/model/checkpoints")
    assert not (mnist["model"] / "checkpoints").exists()
    with pytest.raises(SandboxError, match="not a directory"):
        sandbox.ensure_dir("/tmp/test/README.md/sub")


def test_nested_shadowing_recurses_one_level_at_a_time(tmp_path):
    outer = tmp_path / "outer"
    (outer / "b" / "c").mkdir(parents=True)
    (outer / "b" / "c" / "hidden.txt").write_text("outer c")
    (outer / "b" / "keep.txt").write_text("keep")
    (outer / "top.txt").write_text("top")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "seen.txt").write_text("inner")
    deep = tmp_path / "deep.txt"
    deep.write_text("deep")
    before = snapshot(outer)

    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/x/y/z/deep.txt", deep))   # below a directory the outer source lacks
    sandbox.add(Mount("/a/b/c", inner))           # inner mount added first: order is irrelevant
    sandbox.add(Mount("/a", outer))
    sandbox.materialize()
    a = sandbox.host_path("/a")
    assert not a.is_symlink() and not (a / "b").is_symlink()
    assert os.readlink(a / "top.txt") == str(outer / "top.txt")
    assert os.readlink(a / "b" / "keep.txt") == str(outer / "b" / "keep.txt")
    assert os.readlink(a / "b" / "c") == str(inner)
    assert sorted(os.listdir(a / "b" / "c")) == ["seen.txt"]
    assert sandbox.host_path("/x/y/z/deep.txt").read_text() == "deep"
    assert snapshot(outer) == before

    # a directory on the way to an inner mount that the outer source lacks stays in the sandbox
    sandbox2 = Sandbox(tmp_path / "sb2")
    sandbox2.add(Mount("/a", outer))
    sandbox2.add(Mount("/a/new/dir", inner))
    sandbox2.materialize()
    assert (sandbox2.host_path("/a/new/dir") / "seen.txt").read_text() == "inner"
    assert not (outer / "new").exists()
    assert snapshot(outer) == before


@pytest.mark.parametrize("target, message", [
    ("tmp/test", "relative"),
    ("", "non-empty"),
    ("/tmp/../etc", r"'\.\.'"),
    ("/", "container root"),
    ("//", "container root"),
])
def test_bad_targets_refused(tmp_path, target, message):
    sandbox = Sandbox(tmp_path / "sb")
    with pytest.raises(SandboxError, match=message) as caught:
        sandbox.add(Mount(target, tmp_path))
    assert "mount" in str(caught.value)
    assert sandbox.mounts == ()


def test_duplicate_targets_refused_after_normalising(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/tmp/test", tmp_path / "a"))
    with pytest.raises(SandboxError, match="duplicate target.*'/tmp/test'"):
        sandbox.add(Mount("/tmp//./test/", tmp_path / "b"))


def test_missing_source_named(tmp_path):
    sandbox = Sandbox(tmp_path / "sb")
    with pytest.raises(SandboxError, match="nope.*does not exist"):
        sandbox.add(Mount("/data", tmp_path / "nope"))


def test_source_inside_root_refused(tmp_path):
    (tmp_path / "sb" / "inner").mkdir(parents=True)
    with pytest.raises(SandboxError, match="inside the sandbox root"):
        Sandbox(tmp_path / "sb").add(Mount("/data", tmp_path / "sb" / "inner"))


def test_mount_inside_a_file_mount_refused_before_anything_is_made(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("k")
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/certs/key", key))
    sandbox.add(Mount("/certs/key/inner", tmp_path))
    with pytest.raises(SandboxError, match="is not a directory.*/certs/key/inner"):
        sandbox.materialize()
    assert not (tmp_path / "sb").exists()


def test_inner_mount_under_a_source_file_refused(tmp_path):
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "b").write_text("a file where a directory is needed")
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/a", outer))
    sandbox.add(Mount("/a/b/c", tmp_path))
    with pytest.raises(SandboxError, match="need '/a/b' to be a directory"):
        sandbox.materialize()


def test_materialize_once_and_no_add_afterwards(tmp_path):
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/data", tmp_path))
    with pytest.raises(SandboxError, match="materialize"):
        sandbox.ensure_dir("/work")
    sandbox.materialize()
    with pytest.raises(SandboxError, match="already materialized"):
        sandbox.materialize()
    with pytest.raises(SandboxError, match="already materialized"):
        sandbox.add(Mount("/more", tmp_path))


def test_host_path(tmp_path):
    sandbox = Sandbox(tmp_path / "sb")
    assert sandbox.host_path("/tmp/test/") == tmp_path / "sb" / "tmp" / "test"
    assert sandbox.host_path("/") == tmp_path / "sb"
    with pytest.raises(SandboxError, match="relative"):
        sandbox.host_path("model")
    with pytest.raises(SandboxError, match=r"'\.\.'"):
        sandbox.host_path("/tmp/test/../../etc")
    assert str(normalise("/tmp//./test/")) == "/tmp/test"


def test_rewrite_env(mnist):
    sandbox = mnist_sandbox(mnist)
    sandbox.register_prefix("/scratch")
    root = mnist["root"]
    env = {"MODEL_DIR": "model", "MAX_EPOCHS": "5", "URL": "http://x/y",
           "DATA_DIR": "/tmp/test/data", "WORK": "/tmp/test/", "KEY": "/swarm-cert/sl-1-key.pem",
           "CAPATH": "/swarm-cert/capath", "SCRATCH": "/scratch/user1", "BIN": "/usr/bin",
           "CERTDIR": "/swarm-cert", "SNEAKY": "/tmp/test/../../etc", "TMP": "/tmp/testing"}
    out = sandbox.rewrite_env(env)
    assert out == {**env, "DATA_DIR": f"{root}/tmp/test/data", "WORK": f"{root}/tmp/test/",
                   "KEY": f"{root}/swarm-cert/sl-1-key.pem", "CAPATH": f"{root}/swarm-cert/capath",
                   "SCRATCH": f"{root}/scratch/user1"}
    assert env["DATA_DIR"] == "/tmp/test/data"            # the input is not modified


def test_cleanup_removes_root_and_leaves_sources_intact(mnist, tmp_path):
    before = sources(mnist)
    with mnist_sandbox(mnist) as sandbox:
        sandbox.materialize()
        (sandbox.host_path("/tmp/test") / "sandbox-only.txt").write_text("gone with cleanup")
        sandbox.ensure_dir("/opt/work")
    assert not mnist["root"].exists()
    assert sources(mnist) == before
    sandbox.cleanup()                                     # idempotent


def test_cleanup_never_follows_links_into_sources(tmp_path):
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "precious.txt").write_text("keep me")
    sandbox = Sandbox(tmp_path / "sb")
    sandbox.add(Mount("/a", src))
    sandbox.add(Mount("/a/inner", tmp_path / "src" / "deep"))
    sandbox.materialize()
    sandbox.cleanup()
    assert (src / "deep" / "precious.txt").read_text() == "keep me"
    assert not (tmp_path / "sb").exists()
