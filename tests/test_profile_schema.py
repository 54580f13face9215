"""SWOP profiles: the profile schema, its problems by file:line:col and field path, swci --check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmlearning.schemas import (
    DefinitionError,
    Problem,
    load_schema,
    validate_document,
    validate_object,
)
from swci.check import check_yaml, yaml_kind

from .hpe_examples import hpe_files, needs_hpe
from .schema_checks import check_described_schema
from .test_golden import run_swci

DATA = Path(__file__).parent / "data" / "swop"
PROFILES = sorted(DATA.glob("*.yaml"))


def text_of(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


TWO_NODES = text_of("profile_two_nodes.yaml")
FLOW = text_of("profile_flow_style.yaml")
PROXY = text_of("profile_reverse_proxy.yaml")
GPU = text_of("profile_gpu.yaml")
SPIRE = text_of("profile_spire_process.yaml")


def changed(text: str, old: str, new: str) -> str:
    """``text`` with its one occurrence of ``old`` replaced (a test edit must hit exactly once)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def at(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column where the one occurrence of ``needle`` starts in ``text``."""
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def problems_of(text: str, source: str = "p.yaml") -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        validate_document(text, source, "profile")
    return caught.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def placed(problem: Problem) -> tuple[str, int, int]:
    return problem.path, problem.line, problem.column


# -- our own profiles validate ---------------------------------------------------------------------


def test_the_data_set_covers_every_shape() -> None:
    assert [p.name for p in PROFILES] == [
        "profile_flow_style.yaml", "profile_gpu.yaml", "profile_reverse_proxy.yaml",
        "profile_spire_process.yaml", "profile_two_nodes.yaml",
    ]


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_our_profiles_validate(path: Path) -> None:
    document = validate_document(path.read_text(encoding="utf-8"), str(path), "profile")
    assert document["taskrunner"] == "defaulttaskbb.taskdb.sml.hpe"
    nodes = [node["slnodedef"] for node in document["nodes"]]
    assert [node["idx"] for node in nodes] == list(range(len(nodes)))
    assert validate_object(document, "profile") == []


def test_placeholders_are_plain_strings() -> None:
    document = validate_document(TWO_NODES, "two.yaml", "profile")
    assert document["network"] == "<SWARM-NETWORK>"
    assert document["apls"]["locator"]["host"] == "<LICENSE-SERVER-ADDRESS>"
    first = document["nodes"][0]["slnodedef"]
    assert first["identity"][0]["attribute"]["src"] == "<PROJECT-CERTS>/sl-a1-key.pem"
    assert first["slhostip"] == "<HOST_ADDRESS>"


def test_flow_style_kv_lists_are_lists_of_one_entry_maps() -> None:
    document = validate_document(FLOW, "flow.yaml", "profile")
    assert document["envvars"] == [{"SL_LOG_LEVEL": "WARNING"}, {"http_proxy": None},
                                   {"no_proxy": "localhost"}]
    node = document["nodes"][0]["slnodedef"]
    assert node["slenvvars"] == [{"SL_RAM_INTENSIVE": False}, {"SL_LOG_LEVEL": "INFO"}]
    assert node["usrenvvars"][1:] == [{"BATCH_SIZE": 32}, {"LEARNING_RATE": 0.01}]


def test_reverse_proxy_fields() -> None:
    document = validate_document(PROXY, "proxy.yaml", "profile")
    assert document["apisrv"]["locator"]["service"] == "api.sn-edge.swarm"
    assert document["dns"] == ["<PROXY-DNS-IP>", "198.51.100.53"]
    second = document["nodes"][1]["slnodedef"]
    assert second["slfsservice"] == "fs.sl-e2.swarm:30332"
    assert second["slnetworkopts"] == [{"ip": "<SL-IP-2>"}]


def test_gpu_container_options() -> None:
    document = validate_document(GPU, "gpu.yaml", "profile")
    nvidia, amd = (node["slnodedef"]["usrcontaineropts"] for node in document["nodes"])
    assert nvidia == [{"gpus": "all"}]
    assert {"device": ["/dev/kfd", "/dev/dri"]} in amd and {"privileged": True} in amd


def test_process_manager_spiffe_identity_and_labels() -> None:
    document = validate_document(SPIRE, "spire.yaml", "profile")
    assert document["resourcemgr"]["mgrtype"] == "PROCESS"
    first = document["nodes"][0]["slnodedef"]
    assert first["identity"][0]["attribute"]["aType"] == "SPIFFE_SOCKETPATH"
    assert "subPath" not in first["identity"][0]["attribute"]  # optional, as HPE's examples use it
    assert first["sllabels"] == {"swarm.role": "sl", "swarm.site": "1"}
    assert first["usrlabels"] == ["swarm.ml", "swarm.site-1"]


# -- problems name the field, its line and column --------------------------------------------------


def test_misspelt_node_field_gets_a_suggestion() -> None:
    text = changed(TWO_NODES, "        usrenvvars :\n            - SCRATCH_DIR : ml-a2",
                   "        usrenvars :\n            - SCRATCH_DIR : ml-a2")
    missing, unknown = problems_of(text)
    # the missing key is reported where its slnodedef mapping starts, the typo at the key itself
    assert placed(missing) == ("nodes[1].slnodedef.usrenvvars", *at(text, "idx : 1"))
    assert missing.message == "required key is missing"
    assert placed(unknown) == ("nodes[1].slnodedef.usrenvars", *at(text, "usrenvars"))
    assert unknown.message == "unknown key 'usrenvars'; did you mean 'usrenvvars'?"
    assert str(unknown).startswith(f"p.yaml:{unknown.line}:9: nodes[1].slnodedef.usrenvars: ")


def test_misspelt_top_level_key() -> None:
    text = changed(TWO_NODES, "taskrunner :", "taskruner :")
    missing, unknown = problems_of(text)
    assert (missing.path, missing.message) == ("taskrunner", "required key is missing")
    assert placed(unknown) == ("taskruner", *at(text, "taskruner"))
    assert unknown.message == "unknown key 'taskruner'; did you mean 'taskrunner'?"


def test_wrong_mount_type() -> None:
    old = ('mType : VOLUME\n                src : sl-a2-identity\n'
           '                tgt : "/swarm-cert/sl-a2-c')
    text = changed(TWO_NODES, old, old.replace("VOLUME", "MOUNT"))
    problem = only_problem(text)
    assert placed(problem) == ("nodes[1].slnodedef.identity[1].attribute.mType",
                               *at(text, "MOUNT"))
    assert problem.message == "'MOUNT' is not one of BIND, VOLUME"


def test_wrong_private_data_mount_type_gets_a_suggestion() -> None:
    text = changed(FLOW, "mType: BIND}\n      slenvvars", "mType: bind}\n      slenvvars")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[0].slnodedef.privatedata.mType", *at(text, "bind}"))
    assert problem.message == "'bind' is not one of BIND, VOLUME; did you mean BIND?"


@pytest.mark.parametrize(("text", "old", "new", "path", "message"), [
    (TWO_NODES, "slport : 16200", "slport : 70000", "nodes[1].slnodedef.slport",
     "70000 is more than the limit of 65535"),
    (FLOW, "port: ~}}\napisrv", "port: -1}}\napisrv", "apls.locator.port",
     "-1 is less than the limit of 0"),
    (PROXY, "port: 443", "port: 65536", "apisrv.locator.port",
     "65536 is more than the limit of 65535"),
], ids=["slport", "apls", "apisrv"])
def test_port_out_of_range(text: str, old: str, new: str, path: str, message: str) -> None:
    text = changed(text, old, new)
    problem = only_problem(text)
    line, column = at(text, new)
    value_column = column + new.index(": ") + 2
    assert placed(problem) == (path, line, value_column)
    assert problem.message == message


@pytest.mark.parametrize("port", ["0", "65535"])
def test_port_limits_are_inclusive(port: str) -> None:
    validate_document(changed(TWO_NODES, "slport : 16200", f"slport : {port}"), "p", "profile")


def test_missing_required_node_key() -> None:
    text = changed(TWO_NODES, "        slhostname : sl-a2\n", "")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[1].slnodedef.slhostname", *at(text, "idx : 1"))
    assert problem.message == "required key is missing"


def test_missing_apisrv_service() -> None:
    text = changed(FLOW, "port: ~, service: ~}", "port: ~}")
    problem = only_problem(text)
    assert placed(problem) == ("apisrv.locator.service", *at(text, "{host: ~, port: ~}"))
    assert problem.message == "required key is missing"


@pytest.mark.parametrize(("text", "old", "new", "needle", "path", "message"), [
    (TWO_NODES, "slport : 16100", 'slport : "16100"', '"16100"', "nodes[0].slnodedef.slport",
     "expected null or an integer, got a string ('16100')"),
    (TWO_NODES, "idx : 1", "idx : one", "one\n", "nodes[1].slnodedef.idx",
     "expected an integer, got a string ('one')"),
    (TWO_NODES,
     "        privatedata :\n            src: ward-a2-volume\n            mType : VOLUME\n",
     "        privatedata : ward-a2-volume\n", "ward-a2-volume", "nodes[1].slnodedef.privatedata",
     "expected null or a mapping, got a string ('ward-a2-volume')"),
    (FLOW, 'envvars: [SL_LOG_LEVEL : WARNING, http_proxy : ~, no_proxy: "localhost"]',
     "envvars: {SL_LOG_LEVEL: WARNING}", "{SL_LOG_LEVEL", "envvars",
     "expected null or a list, got a mapping with keys SL_LOG_LEVEL"),
    (FLOW, "      usrhostname: ml-b", "      sllabels: role\n      usrhostname: ml-b", "role",
     "nodes[0].slnodedef.sllabels", "expected null, a mapping or a list, got a string ('role')"),
    (PROXY, "    - 198.51.100.53", "    - 53", "53\n", "dns[1]",
     "expected a string, got an integer (53); quote it in the YAML to keep it as text"),
], ids=["slport", "idx", "privatedata", "envvars", "sllabels", "dns"])
def test_wrong_type(text: str, old: str, new: str, needle: str, path: str, message: str) -> None:
    text = changed(text, old, new)
    problem = only_problem(text)
    assert placed(problem) == (path, *at(text, needle))
    assert problem.message == message


def test_null_slnodedef() -> None:
    text = changed(FLOW, "  - slnodedef:\n      idx: 0",
                   "  - slnodedef:\n  - slnodedef:\n      idx: 0")
    problem = only_problem(text)
    assert problem.path == "nodes[0].slnodedef"
    assert problem.message == "expected a mapping, got null (an empty value)"


def test_mistyped_node_wrapper() -> None:
    text = changed(FLOW, "  - slnodedef:", "  - slnodedf:")
    missing, unknown = problems_of(text)
    assert placed(missing) == ("nodes[0].slnodedef", *at(text, "slnodedf"))
    assert placed(unknown) == ("nodes[0].slnodedf", *at(text, "slnodedf"))
    assert unknown.message == "unknown key 'slnodedf'; did you mean 'slnodedef'?"


def test_misspelt_apisrv_locator() -> None:
    text = changed(FLOW, "apisrv: {locator:", "apisrv: {locater:")
    problem = only_problem(text)
    assert placed(problem) == ("apisrv.locater", *at(text, "locater"))
    assert problem.message == "unknown key 'locater'; did you mean 'locator'?"


# -- K:V lists -------------------------------------------------------------------------------------


def test_kv_item_with_two_keys() -> None:
    text = changed(TWO_NODES, "            - SCRATCH_DIR : ml-a1\n            - EPOCHS : 4",
                   "            - SCRATCH_DIR : ml-a1\n              EPOCHS : 4")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[0].slnodedef.usrenvvars[0]", *at(text, "SCRATCH_DIR : ml-a1"))
    assert problem.message == "has 2 keys, more than the 1 allowed"


def test_env_value_must_be_a_scalar_but_an_option_may_be_a_list() -> None:
    text = changed(FLOW, "BATCH_SIZE : 32", "BATCH_SIZE : [32]")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[0].slnodedef.usrenvvars[1].BATCH_SIZE", *at(text, "[32]"))
    assert problem.message.startswith("expected a string, a number, a boolean or null, got a list")
    # a list is fine as an option value (device: [...]) but a mapping is not
    validate_document(changed(GPU, "[gpus: all]", "[gpus: [all]]"), "g.yaml", "profile")
    text = changed(GPU, "[gpus: all]", "[gpus: {count: 2}]")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[0].slnodedef.usrcontaineropts[0].gpus", *at(text, "{count"))


def test_kv_key_must_be_text() -> None:
    text = changed(FLOW, "BATCH_SIZE : 32", "5 : 32")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[0].slnodedef.usrenvvars[1][5]", *at(text, "5 : 32"))
    assert problem.message.startswith("invalid key: expected a string, got an integer (5)")


# -- HPE's quirks and our extension ----------------------------------------------------------------


def test_lower_case_subpath_is_refused_with_the_spelling_hpe_examples_use() -> None:
    text = changed(FLOW, "sl-b-cert.pem, subPath: ~}", "sl-b-cert.pem, subpath: ~}")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[0].slnodedef.identity[1].attribute.subpath",
                               *at(text, "subpath"))
    assert problem.message == "unknown key 'subpath'; did you mean 'subPath'?"


def test_sub_path_limits() -> None:
    text = changed(TWO_NODES, "subPath : keys/sl-a2-key.pem", "subPath : k")
    problem = only_problem(text)
    assert placed(problem) == ("nodes[1].slnodedef.identity[0].attribute.subPath", *at(text, "k\n"))
    assert problem.message == "'k' is shorter than 2 characters"


@pytest.mark.parametrize(("value", "message"), [
    ("docker", "'docker' is not one of DOCKER, PROCESS; did you mean DOCKER?"),
    ("KUBERNETES", "'KUBERNETES' is not one of DOCKER, PROCESS"),
])
def test_resource_manager_type(value: str, message: str) -> None:
    text = changed(TWO_NODES, "mgrtype    : DOCKER", f"mgrtype    : {value}")
    problem = only_problem(text)
    assert placed(problem) == ("resourcemgr.mgrtype", *at(text, value))
    assert problem.message == message


def test_process_manager_is_accepted() -> None:
    text = changed(TWO_NODES, "mgrtype    : DOCKER", "mgrtype    : PROCESS")
    assert validate_document(text, "p.yaml", "profile")["resourcemgr"]["mgrtype"] == "PROCESS"


def test_identical_nodes_are_refused() -> None:
    text = FLOW + FLOW[FLOW.index("  - slnodedef:"):]
    problem = only_problem(text)
    assert placed(problem) == ("nodes", at(text, "nodes:\n")[0] + 1, 3)
    assert problem.message == "contains the same item more than once"


# -- the schema itself -----------------------------------------------------------------------------


def test_schema_is_valid_and_every_property_is_described() -> None:
    schema = check_described_schema("profile")
    assert schema["additionalProperties"] is False


def test_required_lists_are_hpes() -> None:
    schema = load_schema("profile")
    assert schema["required"] == ["groupname", "taskrunner", "policyuri", "resourcemgr",
                                  "network", "apls", "apisrv", "envvars", "nodes"]
    assert schema["$defs"]["slnodedef"]["required"] == [
        "idx", "identity", "slhostname", "privatedata", "slenvvars", "usrhostname", "usrenvvars"]
    # HPE's list says "subpath", a key its own schema forbids; subPath is optional here
    assert schema["$defs"]["attribute"]["required"] == ["aType", "mType", "src", "tgt"]
    assert "subPath" in schema["$defs"]["attribute"]["properties"]
    locator = schema["properties"]["apisrv"]["properties"]["locator"]
    assert locator["required"] == ["host", "service"]


# -- swci --check ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("document", "kind"), [
    ({"groupname": "g"}, "profile"),
    ({"nodes": []}, "profile"),
    ({"taskrunner": "t"}, "profile"),
    ({"TaskType": "RUN_SWARM", "nodes": []}, "task"),
    ({"Name": "x"}, None),
    (["groupname"], None),
    (None, None),
])
def test_yaml_kind(document: Any, kind: str | None) -> None:
    assert yaml_kind(document) == kind


def test_check_yaml_reports_profile_problems() -> None:
    text = changed(TWO_NODES, "slport : 16200", "slport : 70000")
    (problem,) = check_yaml("bad.yaml", text)
    line, column = at(text, "70000")
    assert str(problem) == (f"bad.yaml:{line}:{column}: nodes[1].slnodedef.slport: "
                            "70000 is more than the limit of 65535")


def test_check_yaml_takes_a_lone_groupname_for_a_profile() -> None:
    problems = check_yaml("g.yaml", "groupname: g\n")
    assert [p.message for p in problems] == [f"{name}: required key is missing" for name in (
        "taskrunner", "policyuri", "resourcemgr", "network", "apls", "apisrv", "envvars", "nodes")]


def test_swci_check_refuses_a_bad_profile(tmp_path: Path) -> None:
    bad = changed(TWO_NODES, "        usrenvvars :\n            - SCRATCH_DIR : ml-a2",
                  "        usrenvars :\n            - SCRATCH_DIR : ml-a2")
    bad = changed(bad, "mType : BIND\n                src : \"<PROJECT-CACERTS>\"",
                  "mType : MOUNT\n                src : \"<PROJECT-CACERTS>\"")
    (tmp_path / "bad.yaml").write_text(bad)
    (tmp_path / "good.yaml").write_text(GPU)
    result = run_swci("--check", "bad.yaml", "good.yaml", cwd=tmp_path)
    assert result.returncode == 2
    mount_line, mount_column = at(bad, "MOUNT")
    typo_line, typo_column = at(bad, "usrenvars")
    node_line, node_column = at(bad, "idx : 1")
    assert result.stdout.splitlines() == [
        f"bad.yaml:{mount_line}:{mount_column}: nodes[0].slnodedef.identity[2].attribute.mType: "
        "'MOUNT' is not one of BIND, VOLUME",
        f"bad.yaml:{node_line}:{node_column}: nodes[1].slnodedef.usrenvvars: "
        "required key is missing",
        f"bad.yaml:{typo_line}:{typo_column}: nodes[1].slnodedef.usrenvars: "
        "unknown key 'usrenvars'; did you mean 'usrenvvars'?",
        "good.yaml: OK",
    ]


def test_swci_check_accepts_good_profiles(tmp_path: Path) -> None:
    names = []
    for path in PROFILES:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"))
        names.append(path.name)
    result = run_swci("--check", *names, cwd=tmp_path)
    assert (result.returncode, result.stdout.splitlines()) == (0, [f"{n}: OK" for n in names])


# -- HPE's own example profiles --------------------------------------------------------------------
# They are not copied into this repository. Point HPE_SWARM_LEARNING_DIR at a checkout of
# HewlettPackard/swarm-learning (tests/hpe_examples.py); without it these tests skip.

HPE_PROFILES = hpe_files("examples/*/swop/*.yaml")


@needs_hpe
@pytest.mark.parametrize(("name", "text"), HPE_PROFILES or [("none", "")],
                         ids=[name for name, _ in HPE_PROFILES] or ["none"])
def test_every_hpe_example_profile_validates(name: str, text: str) -> None:
    document = validate_document(text, name, "profile")
    assert document["resourcemgr"]["mgrtype"] == "DOCKER"
    assert yaml_kind(yaml.safe_load(text)) == "profile"
    assert check_yaml(name, text) == []
