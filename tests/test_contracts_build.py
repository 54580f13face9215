"""The committed contract artifacts are what the Vyper sources compile to, for the london fork."""

from __future__ import annotations

import importlib.util
import json

import pytest

from swarmlearning.chain import compile as contract_build

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vyper") is None,
                                reason="vyper is not installed (it comes with the `test` extra); "
                                       "the committed contract JSON cannot be rebuilt")

SOURCES = sorted(contract_build.CONTRACTS_DIR.glob("*.vy"))


def test_there_are_four_contracts_each_with_an_artifact() -> None:
    assert [source.stem for source in SOURCES] == ["NodeRegistry", "TaskBoard",
                                                   "TaskRunnerBoard", "TrainingBoard"]
    for source in SOURCES:
        assert source.with_suffix(".json").is_file(), f"{source.name} has no compiled JSON"


def test_committed_json_matches_a_fresh_compile(capsys: pytest.CaptureFixture[str]) -> None:
    status = contract_build.main(["--check"])
    stale = capsys.readouterr().err
    assert status == 0, f"recompile the contracts: {stale}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.stem)
def test_artifact_targets_london_and_has_bytecode(source) -> None:
    artifact = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    assert artifact["contract"] == source.stem
    assert artifact["evm_version"] == "london"
    assert artifact["vyper"] == contract_build.VYPER_VERSION
    assert isinstance(artifact["bytecode"], str)
    assert artifact["bytecode"].startswith("0x")
    assert len(artifact["bytecode"]) > 2
    assert any(item.get("type") == "function" for item in artifact["abi"])


def test_check_reports_a_stale_artifact(tmp_path, monkeypatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # the check must be able to fail: a copy of one source beside an edited artifact
    source = contract_build.CONTRACTS_DIR / "NodeRegistry.vy"
    (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    artifact = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    artifact["bytecode"] += "ff"
    (tmp_path / "NodeRegistry.json").write_text(contract_build.render(artifact),
                                                encoding="utf-8")
    monkeypatch.setattr(contract_build, "CONTRACTS_DIR", tmp_path)
    assert contract_build.main(["--check"]) == 1
    assert "NodeRegistry.json" in capsys.readouterr().err
    assert contract_build.render(artifact) == (tmp_path / "NodeRegistry.json").read_text()
