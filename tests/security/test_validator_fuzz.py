"""The task and SWOP profile validators under generated input: any text, any YAML-shaped data
and near-valid documents give either the parsed document or a DefinitionError whose every
problem names the file, a line and column inside the text, and a reason; never another
exception. The SWOP and the SN run these on files and requests they do not control."""

from __future__ import annotations

import re

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from swarmlearning.schemas.validate import DefinitionError, validate_document, validate_object

SCHEMAS = ("task", "profile")
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=200))
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=20), inner, max_size=5), max_leaves=20)
TASK_KEYS = ("Name", "TaskType", "Author", "Prereq", "Outcome", "Body", "BuildContext",
             "BuildType", "BuildSteps", "Command", "Entrypoint", "WorkingDir", "Envvars",
             "PrivateContent", "SharedContent", "Tgt", "MType", "ContentType", "OpsList")
PROFILE_KEYS = ("groupname", "taskrunner", "swarmNetwork", "apiKey", "nodes", "slnodedef",
                "idx", "identity", "slhostname", "slhostip", "slport", "usrhostname",
                "privatedata", "src", "mode", "slenvvars", "usrenvvars", "usrcontainerhostip",
                "dockerhostip", "dockerport")
NEAR_VALID = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(TASK_KEYS + PROFILE_KEYS), inner, max_size=8),
    max_leaves=30)


def check(text: str, schema: str) -> None:
    # the lines as YAML counts them: NEL, LS and PS break lines too (hypothesis found NEL)
    lines = len(re.split("\r\n|[\n\r\x85\u2028\u2029]", text))
    try:
        validate_document(text, "fuzz.yaml", schema)
    except DefinitionError as exc:
        assert exc.problems, text
        for problem in exc.problems:
            assert problem.source == "fuzz.yaml" and problem.message, problem
            assert 1 <= problem.line <= lines + 1 and problem.column >= 1, (problem, text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.sampled_from(SCHEMAS))
@example("!!python/object/apply:os.system ['echo owned']", "task")
@example("Author: '\x85  '\nName: null\nPrereq: '\x85  '\nTaskType: '\x85  '\nWorkingDir: null\n",
         "task")
@example("Name: &a [*a]\n", "task")
@example("a: &a\n  b: *a\n", "profile")
@example("[" * 5000 + "]" * 5000, "task")
@example("Name: x\n" * 3 + "Body: {}\n", "task")
@example("\ufeffName: x\n\x00", "profile")
@example("Name: " + "9" * 5000 + "\n", "task")
def test_any_text_is_a_document_or_problems_with_positions(text: str, schema: str) -> None:
    check(text, schema)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATA | NEAR_VALID, st.sampled_from(SCHEMAS))
def test_any_yaml_data_is_a_document_or_problems_with_positions(data: object,
                                                                schema: str) -> None:
    check(yaml.safe_dump(data, allow_unicode=True), schema)
    # as the SN sees a task definition sent as JSON: problems, or none, never an exception
    assert all(isinstance(problem, str) and problem for problem in
               validate_object(data, schema))
