"""The swci command line: --check, --script, --init-script with --usr-dir, piped input."""

from __future__ import annotations

from pathlib import Path

from .test_golden import run_swci

HPE_STYLE = """\
# An init script in the shape HPE's examples use (our own words and names).
EXIT ON FAILURE
wait for ip <HOST-IP>
create context demo with ip <HOST-IP>
switch context demo
EXIT ON FAILURE OFF
cd /platform/swarm/usr
create task from taskdefs/user_env_build_task.yaml
finalize task user_env_build_task
get task info user_env_build_task
get task body user_env_build_task
list tasks
EXIT ON FAILURE
RESET TASKRUNNER defaulttaskbb.taskdb.sml.hpe
ASSIGN TASK user_env_build_task TO defaulttaskbb.taskdb.sml.hpe WITH 2 PEERS
WAIT FOR TASKRUNNER defaulttaskbb.taskdb.sml.hpe
SLEEP 30
PERFDATA defaultbb.cqdb.sml.hpe
sleep 15
reset taskrunner defaulttaskbb.taskdb.sml.hpe
EXIT ON FAILURE OFF
wait for service api.sn-1.swarm
create context edge with service api.sn-1.swarm
LIST CONTRACTS
RESET CONTRACT defaultbb.cqdb.sml.hpe
EXIT
"""


def test_check_accepts_hpe_style_scripts(tmp_path):
    (tmp_path / "swci-init").write_text(HPE_STYLE)
    result = run_swci("--check", "swci-init", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "swci-init: OK\n")


def test_check_names_every_problem(tmp_path):
    (tmp_path / "a.swci").write_text("LIST TASKS\nLIST TASKSS\nCREATE CONTRACT\n")
    (tmp_path / "good.swci").write_text("LIST TASKS\n")
    (tmp_path / "t.yaml").write_text("Name: x\nBody:\n  - a\n - b\n")
    (tmp_path / "ok.yml").write_text("Name: x\n")
    result = run_swci("--check", "a.swci", "good.swci", "t.yaml", "ok.yml", "missing.swci",
                      cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("a.swci:2:6: unexpected 'TASKSS'")
    assert lines[1] == ("a.swci:3:16: incomplete command: expected "
                        "<TrainingContractName : string>")
    assert lines[2].startswith("t.yaml:4:2: invalid YAML")
    assert lines[3].startswith("missing.swci:1:1: cannot read file")
    assert lines[4:] == ["good.swci: OK", "ok.yml: OK"]


def test_script_with_a_typo_on_the_last_line_runs_nothing(tmp_path):
    (tmp_path / "s.swci").write_text("pwd\nLIST CONTEXTS\nSWITCH CONTEXT\n")
    result = run_swci("--script", "s.swci", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("s.swci:3:15: incomplete command")


def test_piped_commands_run_in_batch(tmp_path):
    result = run_swci(cwd=tmp_path, stdin="pwd\nSWITCH CONTEXT x\nEXIT ON FAILURE\n")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "SWCI:0 > pwd", f"    {tmp_path.resolve()}", "SWCI:1 > SWITCH CONTEXT x",
        "    ERROR : Context 'x' does not exist (known contexts: none yet)",
        "SWCI:2 > EXIT ON FAILURE", "    EXIT ON FAILURE IS TURNED ON"]


def test_piped_syntax_error_runs_nothing(tmp_path):
    result = run_swci(cwd=tmp_path, stdin="pwd\nLIST\n")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("<stdin>:2:5: incomplete command")


def test_exit_on_failure_exit_code(tmp_path):
    (tmp_path / "s.swci").write_text("EXIT ON FAILURE\nSWITCH CONTEXT x\npwd\n")
    result = run_swci("--script", "s.swci", cwd=tmp_path)
    assert result.returncode == 1
    assert str(tmp_path.resolve()) not in result.stdout


def _usr_dir(tmp_path: Path) -> Path:
    usr = tmp_path / "usr"
    (usr / "taskdefs").mkdir(parents=True)
    return usr


def test_init_script_from_usr_dir_ending_in_exit(tmp_path):
    usr = _usr_dir(tmp_path)
    (usr / "swci-init").write_text("cd /platform/swarm/usr/taskdefs\npwd\nEXIT\n")
    result = run_swci("--usr-dir", str(usr), "--init-script", "swci-init", cwd=tmp_path,
                      stdin="pwd\n")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "SWCI:0 > cd /platform/swarm/usr/taskdefs",
        f"    Current Directory : {usr.resolve() / 'taskdefs'}",
        "SWCI:1 > pwd", f"    {usr.resolve() / 'taskdefs'}", "SWCI:2 > EXIT"]


def test_init_script_without_exit_goes_on_with_input(tmp_path):
    usr = _usr_dir(tmp_path)
    (usr / "swci-init").write_text("cd taskdefs\n")
    result = run_swci("--usr-dir", str(usr), "--init-script", "swci-init", cwd=tmp_path,
                      stdin="pwd\n")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-2:] == ["SWCI:1 > pwd", f"    {usr.resolve() / 'taskdefs'}"]


def test_startup_script_from_environment(tmp_path):
    usr = _usr_dir(tmp_path)
    (usr / "swci-init").write_text("EXIT\n")
    result = run_swci("--usr-dir", str(usr), cwd=tmp_path,
                      env={"SWCI_STARTUP_SCRIPT": "swci-init"})
    assert (result.returncode, result.stdout) == (0, "SWCI:0 > EXIT\n")


def test_missing_script_and_bad_usr_dir(tmp_path):
    result = run_swci("--script", "nope.swci", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot read nope.swci" in result.stderr
    result = run_swci("--usr-dir", "nope", cwd=tmp_path)
    assert result.returncode != 0 and "--usr-dir nope: not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_version(tmp_path):
    result = run_swci("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("swci ")


def test_check_validates_task_definitions_against_the_schema(tmp_path):
    (tmp_path / "task.yaml").write_text(
        "Name: t\nTaskType: PULL_IMAGE\nAuthor: me\nPrereq: ROOTTASK\nOutcome: o\n"
        "Body:\n  Tag: '1'\n  RepoName: r\n  Auth: null\n  Extra: 1\n")
    result = run_swci("--check", "task.yaml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "task.yaml:7:3: Body.OrgAndReg: required key is missing"
    assert lines[1].startswith("task.yaml:10:3: Body.Extra: ")
