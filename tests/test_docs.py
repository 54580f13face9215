"""The documentation shows only what works: every docs/*.md page and the README is checked here
by running what it shows through the product's own parsers.

- ```text and ```swci blocks: every line written as a prompt, `SWCI:<n> > <command>`, parses
  with the SWCI parser. A ```swci block without prompts is a script: every line parses.
- ```yaml blocks: a task definition or SWOP profile validates against the schemas
  (`swci --check`); any other YAML must at least be YAML.
- ```sh blocks: every `swci ...` command uses a real subcommand and only options that its
  argparse parser accepts; a complete command line (no `[...]`, `|` or `...` placeholders)
  must parse as a whole, so required options and value types are checked too.
- ```python blocks compile.
- Relative links (outside code) point at files that exist in the repository, and a `#fragment`
  at a heading that exists.
- Paths and modules named in inline code exist: a path that starts at a top-level entry of the
  repository (`runtime/swarmlearning/sl/rounds.py`, `bench/merge.py`) or at a package's name
  (`swarmlearning/...`, which is not where it lives) names a file or folder there, and a dotted
  name of our packages (`swarmlearning.merge.outliers`, `swarmlearning.swci.Swci`) imports.
  This covers the README, docs/ and the README of every folder. A name that a page says is
  not there carries `<!-- absent -->` right after its code span, and must then not exist.

A block that is wrong on purpose carries `<!-- invalid -->` on the line before its fence; it
must then actually fail its check, so that the mistake it shows stays a mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import io
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from swci.check import check_yaml
from swci.language.errors import SwciSyntaxError
from swci.language.parser import parse_line

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
INVALID_MARK = "<!-- invalid -->"
PROMPT = re.compile(r"^\s*SWCI:\d+ >(?: (?P<command>.*))?$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
SWCI_LANGS = ("text", "swci")
YAML_LANGS = ("yaml", "yml")
SH_LANGS = ("sh", "bash", "shell", "console")
PYTHON_LANGS = ("python", "py")
SEPARATORS = {"&&", "||", ";", "|", "&"}
PLACEHOLDER_MARKS = ("[", "]", "|", "...", "<", ">")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its lines, and the line number of the first."""

    source: str
    first_line: int
    lang: str
    lines: tuple[str, ...]
    invalid: bool

    def where(self, offset: int = 0) -> str:
        return f"{self.source}:{self.first_line + offset}"


def fenced_blocks(text: str, source: str) -> list[Block]:
    """Every fenced block of a Markdown text, with `<!-- invalid -->` noted."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()),
                      "")
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            line = lines[end]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            end += 1
        blocks.append(Block(source, index + 2, match["info"].lower(), tuple(body),
                            before == INVALID_MARK))
        index = end + 1
    return blocks


def prose_lines(text: str, *, keep_code: bool = False) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced blocks; inline code is removed, or with
    `keep_code` only its backticks."""
    result = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match["fence"]
            continue
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
            continue
        if keep_code:
            result.append((number, line.replace("`", "")))
        else:
            result.append((number, re.sub(r"(`+).*?\1", "", line)))
    return result


# --- (a) SWCI command lines ------------------------------------------------------------------


def swci_problems(block: Block) -> list[str]:
    if block.lang not in SWCI_LANGS:
        return []
    prompts = [(i, PROMPT.match(line)) for i, line in enumerate(block.lines)]
    commands = [(i, m["command"] or "") for i, m in prompts if m]
    if not commands and block.lang == "swci":
        commands = list(enumerate(block.lines))
    problems = []
    for offset, command in commands:
        try:
            parse_line(command)
        except SwciSyntaxError as exc:
            problems.append(f"{block.where(offset)}: {command!r}: {exc.message}")
    return problems


# --- (b) task and profile YAML ---------------------------------------------------------------


def yaml_problems(block: Block) -> list[str]:
    if block.lang not in YAML_LANGS:
        return []
    text = "\n".join(block.lines) + "\n"
    return [f"{block.where(p.line - 1)}: {p.message}" for p in check_yaml(block.source, text)]


# --- (c) swci commands in shell blocks -------------------------------------------------------


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


class _Refused(Exception):
    pass


@functools.cache
def swci_parsers() -> dict[str, argparse.ArgumentParser]:
    """The argparse parser of `swci` (key "") and of every subcommand, as the CLI builds them:
    each subcommand is called and stopped at its parse_args, before it does anything."""
    from swci.cli import build_parser
    from swci.commands_cli import SUBCOMMANDS

    parsers = {"": build_parser()}
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    try:
        for name, run in SUBCOMMANDS.items():
            try:
                run([])
            except _Captured as captured:
                parsers[name] = captured.parser
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    missing = set(SUBCOMMANDS) - set(parsers)
    assert not missing, f"subcommands whose parser could not be found: {sorted(missing)}"
    return parsers


def shell_commands(block: Block) -> list[tuple[int, list[str]]]:
    """(line offset, words) of every simple command of a shell block; `\\` continuations are
    joined, comments and a leading `$ ` prompt dropped."""
    commands: list[tuple[int, list[str]]] = []
    pending, start = "", 0
    for offset, line in enumerate(block.lines):
        if not pending:
            start = offset
            line = re.sub(r"^\s*\$ ", "", line)
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical, pending = pending + line, ""
        try:
            words = shlex.split(logical, comments=True)
        except ValueError as exc:
            commands.append((start, ["<unparsable>", str(exc), logical]))
            continue
        current: list[str] = []
        for word in words:
            if word in SEPARATORS:
                commands.append((start, current))
                current = []
            elif word.endswith(";") and word != ";":
                current.append(word[:-1])
                commands.append((start, current))
                current = []
            else:
                current.append(word)
        commands.append((start, current))
    return [(offset, words) for offset, words in commands if words]


def _program(words: list[str]) -> list[str] | None:
    """The words from `swci` on, after any `env` and VAR=value prefixes; None for another
    program."""
    index = 0
    while index < len(words) and (words[index] == "env" or re.fullmatch(r"\w+=.*", words[index])):
        index += 1
    if index < len(words) and (words[index] == "swci" or words[index].endswith("/swci")):
        return words[index + 1:]
    return None


def option_names(words: list[str]) -> list[str]:
    """Every option a command line names, synopsis notation (`[--a|--b]`) included."""
    names = []
    for word in words:
        for part in word.strip("[](){}").split("|"):
            part = part.strip("[](){}")
            if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", part):
                names.append(part.split("=", 1)[0])
    return names


def parse_whole(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """Parse a complete command line; the parser's complaint, or None."""
    def refuse(message: str) -> None:
        raise _Refused(message)

    saved = parser.__dict__.get("error")
    parser.error = refuse  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parser.parse_args(args)
    except _Refused as exc:
        return str(exc)
    finally:
        if saved is None:
            del parser.error
        else:
            parser.error = saved  # type: ignore[method-assign]
    return None


def cli_problems(block: Block) -> list[str]:
    if block.lang not in SH_LANGS:
        return []
    parsers = swci_parsers()
    problems = []
    for offset, words in shell_commands(block):
        if words[0] == "<unparsable>":
            problems.append(f"{block.where(offset)}: cannot split {words[2]!r}: {words[1]}")
            continue
        args = _program(words)
        if args is None:
            continue
        sub = args[0] if args and not args[0].startswith("-") else ""
        if sub not in parsers:
            problems.append(f"{block.where(offset)}: `swci {sub}`: no such subcommand (known: "
                            f"{', '.join(sorted(p for p in parsers if p))})")
            continue
        rest = args[1:] if sub else args
        parser = parsers[sub]
        shown = f"swci {sub}".strip()
        for action in parser._actions:  # a subcommand of its own (swci chain export)
            if isinstance(action, argparse._SubParsersAction) and rest and \
                    rest[0] in action.choices:
                parser, shown, rest = action.choices[rest[0]], f"{shown} {rest[0]}", rest[1:]
                break
        known = set(parser._option_string_actions)
        unknown = [name for name in option_names(rest) if name not in known]
        for name in unknown:
            problems.append(f"{block.where(offset)}: `{shown}` has no option {name}")
        if unknown or "-h" in rest or "--help" in rest:
            continue
        if any(mark in word for word in rest for mark in PLACEHOLDER_MARKS):
            continue
        complaint = parse_whole(parser, rest)
        if complaint:
            problems.append(f"{block.where(offset)}: `{shown} {shlex.join(rest)}`: {complaint}")
    return problems


# --- (d) relative links ----------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(?P<target>\S+?)>?(?:\s|$)")


def heading_slugs(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    slugs: set[str] = set()
    for _, line in prose_lines(text, keep_code=True):
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        slug, count = base, 1
        while slug in slugs:
            slug = f"{base}-{count}"
            count += 1
        slugs.add(slug)
    return slugs


def link_problems(path: Path, text: str) -> list[str]:
    source = str(path.relative_to(ROOT))
    problems = []
    for number, line in prose_lines(text):
        targets = [m["target"] for m in INLINE_LINK.finditer(line)]
        targets += [m["target"] for m in REFERENCE_LINK.finditer(line)]
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto: ...
            file_part, _, fragment = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{source}:{number}: link {target!r}"
            if ROOT not in resolved.parents and resolved != ROOT:
                problems.append(f"{where} leaves the repository")
            elif not resolved.exists():
                problems.append(f"{where}: {resolved.relative_to(ROOT)} does not exist")
            elif fragment and resolved.suffix == ".md":
                if fragment not in heading_slugs(resolved.read_text(encoding="utf-8")):
                    problems.append(f"{where}: no heading #{fragment} in "
                                    f"{resolved.relative_to(ROOT)}")
    return problems


# --- (e) Python blocks -----------------------------------------------------------------------


def python_problems(block: Block) -> list[str]:
    if block.lang not in PYTHON_LANGS:
        return []
    try:
        compile("\n".join(block.lines) + "\n", block.source, "exec")
    except SyntaxError as exc:
        return [f"{block.where((exc.lineno or 1) - 1)}: {exc.msg}"]
    return []


# --- the checks, per page --------------------------------------------------------------------

BLOCK_CHECKS: dict[str, tuple[Callable[[Block], list[str]], tuple[str, ...]]] = {
    "SWCI lines": (swci_problems, SWCI_LANGS),
    "task and profile YAML": (yaml_problems, YAML_LANGS),
    "swci commands": (cli_problems, SH_LANGS),
    "Python syntax": (python_problems, PYTHON_LANGS),
}
"""Each check, and the block languages it reads."""


def block_problems(path: Path, text: str, name: str) -> list[str]:
    """The problems one check finds in a page. A block marked invalid is left out, but when
    the check reads its language, the check must find something wrong in it."""
    check, langs = BLOCK_CHECKS[name]
    problems = []
    for block in fenced_blocks(text, str(path.relative_to(ROOT))):
        found = check(block)
        if not block.invalid:
            problems += found
        elif block.lang in langs and not found:
            problems.append(f"{block.where()}: marked {INVALID_MARK}, but the {name} check "
                            "finds nothing wrong in it")
    return problems


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("check", list(BLOCK_CHECKS))
@pytest.mark.parametrize("path", DOCS, ids=_id)
def test_code_blocks(path: Path, check: str):
    problems = block_problems(path, path.read_text(encoding="utf-8"), check)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCS, ids=_id)
def test_relative_links(path: Path):
    problems = link_problems(path, path.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


# --- (e) paths and modules named in inline code ----------------------------------------------

INLINE_CODE = re.compile(r"(`+)(?P<code>[^`]+?)\1")
PATH_LIKE = re.compile(r"^[\w.-]+(?:/[\w.*-]*)+(?::\d+(?::\d+)?)?$")
MODULE_LIKE = re.compile(r"^(?:swci|swarmlearning)(?:\.[A-Za-z_]\w*)+$")
PACKAGE_NAMES = ("swci", "swarmlearning")
ABSENT_MARK = "<!-- absent -->"  # right after a code span that names what does not exist
PATH_DOCS = sorted({*DOCS, *ROOT.glob("*/README.md"), *ROOT.glob("*/*/README.md")})


def _top_level() -> set[str]:
    return {entry.name for entry in ROOT.iterdir() if not entry.name.startswith(".")} | {".ci"}


def named_problem(code: str, top_level: set[str]) -> str | None:
    """What is wrong with a path or dotted module name written in inline code, if anything."""
    code = code.strip()
    if PATH_LIKE.match(code) and "*" not in code:
        first = code.split("/", 1)[0]
        if first not in top_level and first not in PACKAGE_NAMES:
            return None  # relative to something else (an example's folder, a container)
        path = re.sub(r"(?::\d+)+$", "", code)
        if not (ROOT / path).exists():
            return f"path {code!r} does not exist in the repository"
        return None
    if MODULE_LIKE.match(code):
        return module_problem(code)
    return None


def module_problem(dotted: str) -> str | None:
    """None when `dotted` is a module of ours or an attribute of one, else what is wrong."""
    parts = dotted.split(".")
    if parts[-1] == "__main__":  # importing it would run it
        found = importlib.util.find_spec(dotted)
        return None if found is not None else f"no module {dotted!r}"
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            value = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] not in PACKAGE_NAMES:
                return None  # ours, but it needs a framework that is not installed here
            continue
        for attribute in parts[cut:]:
            if not hasattr(value, attribute):
                if hasattr(value, "__path__"):  # a package without that submodule
                    return f"no module {dotted!r}"
                return f"module {name} has no {'.'.join(parts[cut:])!r} (in {dotted!r})"
            value = getattr(value, attribute)
        return None
    return f"no module {dotted!r}"


def named_paths_problems(path: Path, text: str) -> list[str]:
    top_level = _top_level()
    source = path.relative_to(ROOT)
    problems = []
    fenced = {number for block in fenced_blocks(text, str(source))
              for number in range(block.first_line - 1, block.first_line + len(block.lines) + 1)}
    for number, line in enumerate(text.splitlines(), start=1):
        if number in fenced:
            continue
        for match in INLINE_CODE.finditer(line):
            problem = named_problem(match["code"], top_level)
            if line[match.end():].startswith(ABSENT_MARK):  # named as what is not there
                problem = None if problem else f"{match['code']!r} is marked {ABSENT_MARK}, " \
                                               "but it exists"
            if problem:
                problems.append(f"{source}:{number}: {problem}")
    return problems


@pytest.mark.parametrize("path", PATH_DOCS, ids=_id)
def test_named_paths_and_modules_exist(path: Path):
    problems = named_paths_problems(path, path.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_named_paths_check_finds_what_is_gone():
    page = ("The schemas are in `swarmlearning/schemas`, the merge in "
            "`runtime/swarmlearning/merge/methods.py`, and `runtime/swarmlearning/no_such.py`; "
            "see `swarmlearning.merge.outliers`, `swarmlearning.nothing_here` and "
            "`swarmlearning.swci.Swci`, `swarmlearning.swci.NoSuch`; `model/train.py` is "
            "an example's own; `swarmlearning.gone`<!-- absent --> is not provided, but "
            "`swarmlearning.merge`<!-- absent --> is.\n")
    problems = named_paths_problems(ROOT / "docs" / "broken-example.md", page)
    assert len(problems) == 5, problems
    assert "'swarmlearning/schemas' does not exist" in problems[0]
    assert "'runtime/swarmlearning/no_such.py' does not exist" in problems[1]
    assert "no module 'swarmlearning.nothing_here'" in problems[2]
    assert "swarmlearning.swci.NoSuch" in problems[3]
    assert "'swarmlearning.merge' is marked <!-- absent -->, but it exists" in problems[4]


def test_pages_are_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS if p.parent.name == "docs" and f"(docs/{p.name})" not in readme]
    assert not missing, f"docs pages missing from the README's Documentation list: {missing}"


# --- the checks themselves can fail ----------------------------------------------------------

BROKEN_PAGE = """\
# A page

See [the shell](swci-shell.md), [nothing](no-such-page.md) and
[a heading that is not there](swci-shell.md#no-such-heading).

```text
SWCI:0 > LIST TASKS
SWCI:1 > LIST TASKZ
```

```swci
CREATE CONTEXT lab WITH IP 127.0.0.1
ASSIGN TASK t TO r WITH PEERS
```

```yaml
Name: t
TaskType: RUN_SWARM
Author: me
Prereq: ROOTTASK
Outcome: t
Body:
    Command: train.py
```

```sh
swci run-sn --sentinel --host-ip 10.0.0.5 --listen-ip 0.0.0.0
swci gen-cert --org a
swci run-sn --sentinel --sn-api-port P
swci launch-sn
.venv/bin/swci --scripts x.swci
```

```python
client.assign_task("t", all_peers=True
```

<!-- invalid -->
```text
SWCI:0 > LIST TASKS
```
"""


def test_each_check_finds_the_mistakes_of_a_broken_page():
    path = ROOT / "docs" / "broken-example.md"
    swci = block_problems(path, BROKEN_PAGE, "SWCI lines")
    assert len(swci) == 3, swci
    assert "LIST TASKZ" in swci[0] and "ASSIGN TASK t TO r WITH PEERS" in swci[1]
    assert "marked <!-- invalid -->, but the SWCI lines check finds nothing" in swci[2]
    yaml_found = block_problems(path, BROKEN_PAGE, "task and profile YAML")
    assert yaml_found and all("Body" in p for p in yaml_found), yaml_found
    cli = block_problems(path, BROKEN_PAGE, "swci commands")
    assert any("has no option --listen-ip" in p for p in cli), cli
    assert any("--dir" in p and "required" in p for p in cli), cli
    assert any("invalid int value: 'P'" in p for p in cli), cli
    assert any("`swci launch-sn`: no such subcommand" in p for p in cli), cli
    assert any("`swci` has no option --scripts" in p for p in cli), cli
    python = block_problems(path, BROKEN_PAGE, "Python syntax")
    assert len(python) == 1 and "never closed" in python[0], python
    links = link_problems(path, BROKEN_PAGE)
    assert len(links) == 2, links
    assert "no-such-page.md does not exist" in links[0]
    assert "no heading #no-such-heading" in links[1]


def test_a_block_marked_invalid_is_skipped_when_it_fails():
    page = "<!-- invalid -->\n```yaml\nName: [unclosed\n```\n"
    name = "task and profile YAML"
    assert block_problems(ROOT / "docs" / "x.md", page, name) == []
    assert block_problems(ROOT / "docs" / "x.md", page.replace(INVALID_MARK, ""), name)


def test_shell_lines_are_split_like_a_shell():
    block = Block("x.md", 1, "sh", (
        "$ swci gen-cert --dir a \\",
        "    --ip 10.0.0.5   # a comment with --bogus",
        "cd /tmp && SWARM_WORKSPACE=/tmp/w swci stop-swarm --all; echo done",
        "swci stop-swarm [--all|--sn|--sl|--swop|--swci] [--keep]",
    ), False)
    commands = shell_commands(block)
    assert commands[0] == (0, ["swci", "gen-cert", "--dir", "a", "--ip", "10.0.0.5"])
    assert [c[1][0] for c in commands[1:4]] == ["cd", "SWARM_WORKSPACE=/tmp/w", "echo"]
    assert option_names(commands[-1][1]) == ["--all", "--sn", "--sl", "--swop", "--swci",
                                             "--keep"]
    assert cli_problems(block) == []


def test_heading_anchors_follow_github():
    slugs = heading_slugs("# The SWCI web API\n## `swci serve`: HTTPS\n## Notes\n## Notes\n"
                          "```\n# not a heading\n```\n")
    assert slugs == {"the-swci-web-api", "swci-serve-https", "notes", "notes-1"}


def test_yaml_that_is_neither_task_nor_profile_must_still_be_yaml():
    good = Block("x.md", 1, "yaml", ("envvars:", "  - SL_LOG_LEVEL: INFO"), False)
    bad = Block("x.md", 1, "yaml", ("envvars: [unclosed",), False)
    assert yaml_problems(good) == []
    assert yaml_problems(bad)
    assert yaml.safe_load("\n".join(good.lines)) == {"envvars": [{"SL_LOG_LEVEL": "INFO"}]}
