"""The built wheel holds every module and data file of both packages, and each one imports from
the wheel alone: what `pip install .` gives a user, not what the source tree happens to offer.

The wheel is built from a copy of the project's build inputs (so the checkout gets no build/ or
egg-info), unpacked (a pure-Python wheel installs by unpacking), and imported by a separate,
isolated interpreter with the unpacked folder first on its path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_layout import modules

ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "swci", "grammar", "runtime")
DATA_FILES = ("swci/grammar/swci.lark", "swarmlearning/chain/contracts/TrainingBoard.json",
              "swarmlearning/chain/contracts/TrainingBoard.vy",
              "swarmlearning/schemas/task.schema.json", "swarmlearning/schemas/profile.schema.json")

OPTIONAL = {"tensorflow", "keras", "tf_keras", "torch", "transformers", "peft", "docker"}

# Imports every module named on stdin from the first path entry, and says where each came from;
# a module whose own third-party dependency is missing here is reported as skipped.
IMPORTER = r"""
import importlib, json, sys
names = json.load(sys.stdin)
ours = ("swci", "swarmlearning")
report = {"files": {}, "skipped": {}, "failed": {}}
for name in names:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] not in ours:
            report["skipped"][name] = exc.name
            continue
        report["failed"][name] = repr(exc)
        continue
    except Exception as exc:
        report["failed"][name] = repr(exc)
        continue
    report["files"][name] = getattr(module, "__file__", None)
from swci.language.parser import parse_line
from swarmlearning.schemas import validate_document
report["parsed"] = type(parse_line("LIST TASKS")).__name__
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the folder it was unpacked into)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in BUILD_INPUTS:
        item = ROOT / name
        if item.is_dir():
            shutil.copytree(item, source / name, ignore=ignore)
        else:
            shutil.copy2(item, source / name)
    dist = work / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "--quiet", "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("swci-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return wheel, site


def test_the_wheel_holds_every_module_and_data_file(unpacked: tuple[Path, Path]):
    wheel, _ = unpacked
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    tops = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(
        ".dist-info")}
    assert tops == {"swci", "swarmlearning"}, tops
    expected = {_wheel_path(module.name, module.path) for module in modules().values()}
    expected.add("swci/grammar/__init__.py")
    assert not expected - names, sorted(expected - names)
    assert not set(DATA_FILES) - names, sorted(set(DATA_FILES) - names)


def test_every_module_imports_from_the_wheel(unpacked: tuple[Path, Path]):
    _, site = unpacked
    wanted = sorted(name for name in modules() if not name.endswith("__main__"))
    wanted.append("swci.grammar")
    script = f"import sys; sys.path.insert(0, {str(site)!r})\n" + IMPORTER
    ran = subprocess.run([sys.executable, "-I", "-c", script], input=json.dumps(wanted),
                         capture_output=True, text=True, timeout=240, cwd=site)
    assert ran.returncode == 0, ran.stderr[-3000:]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert not report["failed"], report["failed"]
    outside = {name: file for name, file in report["files"].items()
               if file is None or not Path(file).resolve().is_relative_to(site.resolve())}
    assert not outside, f"imported from outside the wheel: {outside}"
    # a module may be skipped only for an optional framework that is not installed here
    unexpected = {name: missing for name, missing in report["skipped"].items()
                  if missing.split(".")[0] not in OPTIONAL}
    assert not unexpected, unexpected
    assert len(report["files"]) >= len(wanted) - len(report["skipped"])
    assert report["parsed"] == "ListTasks"


def _wheel_path(name: str, path: Path) -> str:
    parts = name.split(".")
    if path.name == "__init__.py":
        parts.append("__init__")
    return "/".join(parts) + ".py"
