"""SWOP task definitions: schema validation with file:line:col problems, and on-chain body lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearning.schemas import (
    DefinitionError,
    Problem,
    check_against,
    format_path,
    load_yaml_with_marks,
    parse_task_body,
    task_body_lines,
    validate_document,
)

from .hpe_examples import hpe_files, needs_hpe
from .schema_checks import check_described_schema

# -- HPE's own example task files ------------------------------------------------------------------
# They are not copied into this repository. Point HPE_SWARM_LEARNING_DIR at a checkout of
# HewlettPackard/swarm-learning (tests/hpe_examples.py); without it these tests skip.

HPE_EXAMPLES = hpe_files("examples/*/swci/taskdefs/*.yaml")


@needs_hpe
@pytest.mark.parametrize(("name", "text"), HPE_EXAMPLES or [("none", "")],
                         ids=[name for name, _ in HPE_EXAMPLES] or ["none"])
def test_every_hpe_example_task_validates(name: str, text: str) -> None:
    document = validate_document(text, name)
    assert document["TaskType"] in ("RUN_SWARM", "MAKE_USER_CONTAINER")
    lines = task_body_lines(document, source=name)
    assert lines[0] == "---"
    assert parse_task_body(lines) == document["Body"]


@needs_hpe
def test_hpe_examples_cover_both_task_types() -> None:
    assert len(HPE_EXAMPLES) >= 20
    types = {validate_document(text, name)["TaskType"] for name, text in HPE_EXAMPLES}
    assert types == {"RUN_SWARM", "MAKE_USER_CONTAINER"}


# -- our own task definitions, one per task type ---------------------------------------------------

BUILD = """\
# build the training image
Name: build_image
TaskType: MAKE_USER_CONTAINER
Author: tester
Prereq: ROOTTASK
Outcome: user-image:1
Body:
  BuildContext: sl-cli-lib
  BuildType: INLINE
  BuildSteps:
  - FROM python:3.11-slim
  - ' '
  - RUN pip install numpy
"""

RUN = """\
Name: run_training
TaskType: RUN_SWARM
Author: tester
Prereq: build_image
Outcome: run_training
Body:
  Command: model/train.py --epochs 3
  Entrypoint: python3
  WorkingDir: /tmp/test
  Envvars: ["MODEL_DIR": model, "MAX_EPOCHS": 2, "VERBOSE": true, "RATE": 0.5, "EMPTY": ~]
  PrivateContent: /tmp/test/data
  SharedContent:
  - Src: /opt/project/model
    Tgt: /tmp/test/model
    MType: BIND
"""

PULL = """\
Name: pull_image
TaskType: PULL_IMAGE
Author: tester
Prereq: ROOTTASK
Outcome: registry.example.net/ml/user-image:1
Body:
  Tag: "1"
  RepoName: user-image
  OrgAndReg: registry.example.net/ml/
  Auth: {Username: robot, Password: ""}
"""

CONTENT = """\
Name: fetch_model
TaskType: MAKE_SWARM_USER_CONTENT
Author: tester
Prereq: ROOTTASK
Outcome: model-volume
Body:
  ContentType: SWARMCONTENT
  OpsList:
  - Operation: DOWNLOAD
    Target: https://example.net/model.tar.gz
    Options: [{Out: model.tar.gz}]
  - Operation: EXTRACT
    Target: model.tar.gz
    Options: []
"""


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / "taskdefs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        validate_document(path.read_text(encoding="utf-8"), str(path))
    problems = caught.value.problems
    assert str(caught.value) == "\n".join(str(p) for p in problems)
    return problems


def only_problem(path: Path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


@pytest.mark.parametrize("text", [BUILD, RUN, PULL, CONTENT],
                         ids=["build", "run", "pull", "content"])
def test_each_task_type_validates_and_round_trips(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    document = validate_document(path.read_text(), str(path))
    assert set(document) == {"Name", "TaskType", "Author", "Prereq", "Outcome", "Body"}
    assert parse_task_body(task_body_lines(document)) == document["Body"]


@pytest.mark.parametrize("auth", ["~", "/home/user/.docker/config.json"])
def test_pull_image_auth_may_be_null_or_a_config_path(tmp_path: Path, auth: str) -> None:
    path = write(tmp_path, PULL.replace('{Username: robot, Password: ""}', auth))
    validate_document(path.read_text(), str(path))


def test_run_swarm_nullable_fields(tmp_path: Path) -> None:
    text = (RUN.replace('["MODEL_DIR": model, "MAX_EPOCHS": 2, "VERBOSE": true, "RATE": 0.5, '
                        '"EMPTY": ~]', "~")
            .replace("PrivateContent: /tmp/test/data", "PrivateContent: ~"))
    text = text[: text.index("  SharedContent:")] + "  SharedContent: null\n"
    path = write(tmp_path, text)
    body = validate_document(path.read_text(), str(path))["Body"]
    assert body["Envvars"] is None and body["SharedContent"] is None


# -- targeted failures: exact path, line and column ------------------------------------------------


def test_wrong_task_type(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("TaskType: MAKE_USER_CONTAINER", "TaskType: BUILD_SWARM"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("TaskType", 3, 11)
    assert "'BUILD_SWARM' is not one of RUN_SWARM" in problem.message
    assert str(problem).startswith(f"{path}:3:11: TaskType: ")


def test_misspelt_task_type_gets_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, RUN.replace("TaskType: RUN_SWARM", "TaskType: run_swarm"))
    assert only_problem(path).message.endswith("did you mean RUN_SWARM?")


def test_missing_build_steps_points_at_the_body_mapping(tmp_path: Path) -> None:
    text = BUILD.split("  BuildSteps:")[0]
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.path == "Body.BuildSteps"
    assert (problem.line, problem.column) == (8, 3)  # first line of the Body mapping
    assert problem.message == "required key is missing"


def test_81_build_steps(tmp_path: Path) -> None:
    steps = "".join(f"  - RUN echo {i}\n" for i in range(81))
    path = write(tmp_path, BUILD.split("  - FROM")[0] + steps)
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Body.BuildSteps", 11, 3)
    assert problem.message == "has 81 items, more than the 80 allowed"


def test_80_build_steps_are_fine(tmp_path: Path) -> None:
    steps = "".join(f"  - RUN echo {i}\n" for i in range(80))
    path = write(tmp_path, BUILD.split("  - FROM")[0] + steps)
    assert len(validate_document(path.read_text(), str(path))["Body"]["BuildSteps"]) == 80


def test_author_of_161_characters(tmp_path: Path) -> None:
    author = "Xy" * 80 + "z"
    path = write(tmp_path, BUILD.replace("Author: tester", f"Author: {author}"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Author", 4, 9)
    assert problem.message.endswith("is longer than 160 characters (161)")
    assert problem.message.startswith("'XyXy") and "..." in problem.message
    assert len(problem.message) < 100  # the value is trimmed, not dumped


def test_author_of_160_characters_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("Author: tester", f"Author: {'a' * 160}"))
    validate_document(path.read_text(), str(path))


def test_long_build_step(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("  - RUN pip install numpy", f"  - RUN {'x' * 160}"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Body.BuildSteps[2]", 13, 5)
    assert "is longer than 160 characters (164)" in problem.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("Prereq: ROOTTASK", "Prereq: ROOTTASK\nOwner: x"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Owner", 6, 1)
    assert problem.message.startswith("unknown key 'Owner'; allowed here: Name, TaskType")


def test_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, RUN.replace("  WorkingDir:", "  WorkDir:"))
    problems = problems_of(path)
    assert [(p.path, p.line, p.column) for p in problems] == [
        ("Body.WorkingDir", 7, 3),  # missing: at the Body mapping
        ("Body.WorkDir", 9, 3),  # unknown: at the key itself
    ]
    assert problems[1].message == "unknown key 'WorkDir'; did you mean 'WorkingDir'?"


def test_shared_content_item_missing_mtype(tmp_path: Path) -> None:
    path = write(tmp_path, RUN.replace("    MType: BIND\n", ""))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Body.SharedContent[0].MType", 13, 5)
    assert problem.message == "required key is missing"


def test_shared_content_bad_mount_type(tmp_path: Path) -> None:
    path = write(tmp_path, RUN.replace("MType: BIND", "MType: TMPFS"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Body.SharedContent[0].MType", 15, 12)
    assert problem.message == "'TMPFS' is not one of BIND, VOLUME"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("  BuildType: INLINE", "  BuildType: [INLINE"))
    problem = only_problem(path)
    assert problem.path == ""
    assert problem.message.startswith("invalid YAML: ")
    assert (problem.line, problem.column) == (10, 13)
    assert str(problem) == f"{path}:10:13: {problem.message}"


def test_tab_indentation_is_a_yaml_error(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("  BuildType:", "\tBuildType:"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("", 9, 1)
    assert "'\\t'" in problem.message


def test_two_documents_are_a_yaml_error(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BUILD + "---\n" + RUN))
    assert (problem.line, problem.column) == (14, 1)  # at the second '---'
    assert "single document" in problem.message


@pytest.mark.parametrize(("text", "got"), [
    ("- Name: x\n- TaskType: RUN_SWARM\n", "a list of 2 items"),
    ("just a string\n", "a string ('just a string')"),
    ("", "null (an empty value)"),
    ("# only a comment\n", "null (an empty value)"),
])
def test_non_mapping_document(tmp_path: Path, text: str, got: str) -> None:
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line, problem.column) == ("", 1, 1)
    assert problem.message == f"the document must be a mapping, not {got}"


def test_body_errors_follow_the_task_type(tmp_path: Path) -> None:
    # a build body under RUN_SWARM: the problems are about the RUN_SWARM body, nothing else
    text = BUILD.replace("TaskType: MAKE_USER_CONTAINER", "TaskType: RUN_SWARM")
    problems = problems_of(write(tmp_path, text))
    missing = [p.path for p in problems if p.message == "required key is missing"]
    unknown = [p.path for p in problems if p.message.startswith("unknown key")]
    assert missing == ["Body.Command", "Body.Entrypoint", "Body.WorkingDir", "Body.Envvars",
                       "Body.PrivateContent", "Body.SharedContent"]
    assert unknown == ["Body.BuildContext", "Body.BuildType", "Body.BuildSteps"]
    assert len(problems) == 9


def test_body_is_not_checked_against_any_type_when_the_type_is_unknown(tmp_path: Path) -> None:
    text = BUILD.replace("TaskType: MAKE_USER_CONTAINER", "TaskType: NOPE").replace(
        "BuildType: INLINE", "BuildType: SOMETIMES")
    assert [p.path for p in problems_of(write(tmp_path, text))] == ["TaskType"]


def test_missing_task_type_and_body(tmp_path: Path) -> None:
    text = "\n".join(line for line in BUILD.splitlines()[:6] if not line.startswith("TaskType"))
    problems = problems_of(write(tmp_path, text + "\n"))
    # both at the top mapping, in the order of the schema's required list
    assert [(p.path, p.line) for p in problems] == [("TaskType", 2), ("Body", 2)]


def test_all_problems_reported_sorted_by_line(tmp_path: Path) -> None:
    text = (RUN.replace("Author: tester", "Author: ''")
            .replace("MType: BIND", "MType: bind")
            .replace("WorkingDir: /tmp/test", "WorkingDir: 7")
            .replace("Outcome: run_training", "Outcome: run_training\nColour: blue"))
    problems = problems_of(write(tmp_path, text))
    assert [(p.line, p.path) for p in problems] == [
        (3, "Author"), (6, "Colour"), (10, "Body.WorkingDir"), (16, "Body.SharedContent[0].MType"),
    ]
    assert problems[0].message == "must not be empty (at least 1 character)"
    assert problems[2].message == ("expected a string, got an integer (7); "
                                   "quote it in the YAML to keep it as text")
    assert problems[3].message == "'bind' is not one of BIND, VOLUME; did you mean BIND?"


def test_unquoted_colon_in_a_build_step(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD.replace("RUN pip install numpy", "ENV PATH: /opt/bin"))
    problem = only_problem(path)
    assert (problem.path, problem.line) == ("Body.BuildSteps[2]", 13)
    assert "quote the whole value" in problem.message


def test_envvars_items_must_be_single_scalar_entries(tmp_path: Path) -> None:
    text = RUN.replace('"EMPTY": ~]', '"EMPTY": ~, {A: 1, B: 2}, "LIST": [1], 5: x]')
    problems = problems_of(write(tmp_path, text))
    assert [(p.path, p.line) for p in problems] == [
        ("Body.Envvars[5]", 10), ("Body.Envvars[6].LIST", 10), ("Body.Envvars[7][5]", 10),
    ]
    assert problems[0].message == "has 2 keys, more than the 1 allowed"
    assert problems[1].message.startswith("expected a string, a number, a boolean or null")
    assert problems[2].message.startswith("invalid key: expected a string, got an integer (5)")
    assert problems[0].column < problems[1].column < problems[2].column


def test_pull_image_auth_mapping_needs_both_keys(tmp_path: Path) -> None:
    path = write(tmp_path, PULL.replace('{Username: robot, Password: ""}', "{Username: robot}"))
    problem = only_problem(path)
    assert (problem.path, problem.line, problem.column) == ("Body.Auth.Password", 10, 9)


def test_content_operation_checks(tmp_path: Path) -> None:
    text = CONTENT.replace("Operation: EXTRACT", "Operation: COPY").replace(
        "[{Out: model.tar.gz}]", "[{Out: ''}]")
    problems = problems_of(write(tmp_path, text))
    assert [(p.path, p.line) for p in problems] == [
        ("Body.OpsList[0].Options[0].Out", 11), ("Body.OpsList[1].Operation", 12),
    ]


def test_yaml_typed_values_in_strings_get_a_quoting_hint(tmp_path: Path) -> None:
    path = write(tmp_path, PULL.replace('Tag: "1"', "Tag: 1.0"))
    problem = only_problem(path)
    assert problem.message == ("expected a string, got a number (1.0); "
                               "quote it in the YAML to keep it as text")


# -- marks -----------------------------------------------------------------------------------------


def test_marks_cover_keys_values_and_items() -> None:
    marked = load_yaml_with_marks(BUILD, "b.yaml")
    assert marked.values[()] == (2, 1)
    assert marked.keys[("Body",)] == (7, 1)
    assert marked.values[("Body",)] == (8, 3)
    assert marked.values[("Body", "BuildType")] == (9, 14)
    assert marked.values[("Body", "BuildSteps", 0)] == (11, 5)
    assert marked.position(("Body", "BuildSteps", 9)) == (11, 3)  # falls back to the list
    assert marked.position(("Body", "BuildType"), key=True) == (9, 3)


def test_marks_follow_aliases_and_merge_keys() -> None:
    text = "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\nagain: *b\n"
    marked = load_yaml_with_marks(text, "a.yaml")
    assert marked.data == {"base": {"x": 1}, "derived": {"x": 1, "y": 2}, "again": {"x": 1}}
    assert marked.values[("derived", "y")] == (4, 6)
    assert marked.values[("again",)] == (1, 7)  # where the anchored node starts


def test_load_matches_safe_load_on_yaml_quirks() -> None:
    text = 'a: [x: 1, "y": yes, z: 0o17]\nb: 2024-01-02\nc: ~\n'
    assert load_yaml_with_marks(text, "q.yaml").data == yaml.safe_load(text)


def test_unsafe_tags_are_rejected_with_a_position() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_yaml_with_marks("a: 1\nb: !!python/object:os.system {}\n", "u.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 2 and problem.message.startswith("invalid YAML: ")


def test_format_path() -> None:
    assert format_path(()) == ""
    assert format_path(("Body", "BuildSteps", 3)) == "Body.BuildSteps[3]"
    assert format_path(("Body", "Envvars", 0, "odd key")) == "Body.Envvars[0]['odd key']"


# -- the schema itself -----------------------------------------------------------------------------


def test_schema_is_valid_and_every_property_is_described() -> None:
    # the if/then switches on TaskType; their $defs are checked
    check_described_schema("task", skip_keys=("allOf",))


def test_unknown_schema_name() -> None:
    with pytest.raises(ValueError, match="no schema named 'nothing'"):
        validate_document("a: 1\n", "x.yaml", schema_name="nothing")
    with pytest.raises(ValueError, match="not a schema name"):
        validate_document("a: 1\n", "x.yaml", schema_name="../task")


def test_one_of_reports_the_closest_alternative() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"mount": {"oneOf": [
            {"type": "string"},
            {"type": "object", "required": ["src", "kind"],
             "properties": {"src": {"type": "string"}, "kind": {"enum": ["BIND", "VOLUME"]}}},
        ]}},
    }
    marked = load_yaml_with_marks("mount:\n  src: /data\n  kind: BINDD\n", "p.yaml")
    problems = check_against(marked, schema)
    assert [(p.path, p.line, p.message) for p in problems] == [
        ("mount.kind", 3, "'BINDD' is not one of BIND, VOLUME; did you mean BIND?"),
    ]
    # no alternative fits the value's shape: one problem saying what each wanted
    problems = check_against(load_yaml_with_marks("mount: 5\n", "p.yaml"), schema)
    assert [(p.path, p.line, p.message) for p in problems] == [
        ("mount", 1, "expected a string or a mapping, got an integer (5)"),
    ]


# -- task body lines on chain ----------------------------------------------------------------------


def test_task_body_lines_shape() -> None:
    document = validate_document(BUILD, "b.yaml")
    assert task_body_lines(document) == [
        "---",
        "BuildContext: sl-cli-lib",
        "BuildType: INLINE",
        "BuildSteps:",
        "- FROM python:3.11-slim",
        "- ' '",
        "- RUN pip install numpy",
    ]


def test_task_body_lines_keep_scalar_types() -> None:
    document = validate_document(RUN, "r.yaml")
    lines = task_body_lines(document)
    assert "- MAX_EPOCHS: 2" in lines and "- VERBOSE: true" in lines
    assert parse_task_body(lines) == document["Body"]


def test_task_body_line_too_long_names_the_field() -> None:
    command = "c" * 160  # valid for the schema, but "Command: " pushes the line past 160
    text = RUN.replace("Command: model/train.py --epochs 3", f"Command: {command}")
    document = validate_document(text, "r.yaml")
    with pytest.raises(DefinitionError) as caught:
        task_body_lines(document, source="r-body")
    (problem,) = caught.value.problems
    assert (problem.source, problem.path, problem.line) == ("r-body", "Body.Command", 2)
    assert "task body line 1 of 169 characters" in problem.message

    marked = load_yaml_with_marks(text, "r.yaml")
    with pytest.raises(DefinitionError) as caught:
        task_body_lines(marked.data, marks=marked)
    (problem,) = caught.value.problems
    assert (problem.source, problem.path, problem.line, problem.column) == (
        "r.yaml", "Body.Command", 7, 12)


def test_task_body_long_line_inside_a_list() -> None:
    body = {"SharedContent": [{"Src": "/a", "Tgt": "/b"}, {"Src": "s" * 160, "Tgt": "/c"}]}
    with pytest.raises(DefinitionError) as caught:
        task_body_lines({"Body": body})
    (problem,) = caught.value.problems
    assert problem.path == "Body.SharedContent[1].Src"


def test_task_body_lines_need_a_body() -> None:
    with pytest.raises(DefinitionError, match="Body: required key is missing"):
        task_body_lines({"Name": "x"})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=14), min_size=1, max_size=8),
       st.one_of(st.none(), st.text(min_size=3, max_size=40)))
def test_task_body_round_trip(steps: list[str], context: str | None) -> None:
    body = {"BuildContext": context, "BuildType": "INLINE", "BuildSteps": steps}
    try:
        lines = task_body_lines({"Body": body})
    except DefinitionError as exc:
        # characters YAML must escape can make one value longer than a body line may be:
        # that is refused, naming the field, never cut short
        assert all("at most 160" in p.message and p.path.startswith("Body.")
                   for p in exc.problems), exc.problems
        return
    assert lines[0] == "---"
    assert all(len(line) <= 160 for line in lines)
    assert parse_task_body(lines) == body
