"""Completion as plain data: what may be typed at the cursor, keywords and live names.

Stage one (swci.language.expect) says which keywords and argument roles fit at the cursor; stage
two maps each role to candidates: live names (contexts, contracts, tasks, taskrunners, SWOPs)
from a NameSource, file paths, or command words after HELP. No terminal is needed to test it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lark import Token

from swci.language.expect import expected_at, keyword_text
from swci.language.syntax import placeholder
from swci.registry import command_names

ROLE_SOURCES = {
    "context_name": "contexts",
    "training_contract_name": "contracts",
    "task_name": "tasks",
    "prereq": "tasks",
    "taskrunner_name": "taskrunners",
    "swop_uid": "swops",
    "swop_peer": "swops",
    "task_def_file": "files",
    "ls_arg": "files",
    "dir_path": "dirs",
}


class NameSource(Protocol):
    """Live names by kind: contexts, contracts, tasks, taskrunners, swops."""

    def names(self, kind: str) -> list[str]: ...


@dataclass(frozen=True)
class StaticNames:
    """A NameSource over fixed lists (tests, and the shell's snapshot of live names)."""

    by_kind: dict[str, list[str]]

    def names(self, kind: str) -> list[str]:
        return list(self.by_kind.get(kind, []))


KIND_LABELS = {
    "contexts": "context", "contracts": "contract", "tasks": "task",
    "taskrunners": "taskrunner", "swops": "SWOP UID", "files": "file", "dirs": "directory",
}


@dataclass(frozen=True)
class Suggestion:
    """One completion: the text to insert and what it is. A hint has no text: it shows the value
    to type (e.g. <PeersNeeded : int>) without inserting anything."""

    text: str
    meta: str
    display: str = ""


def split_partial(text: str) -> tuple[str, str]:
    """(complete prefix, partial word at the cursor)."""
    if not text or text[-1].isspace():
        return text, ""
    start = len(text)
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[:start], text[start:]


def _match_case(keyword: str, partial: str) -> str:
    if partial and partial.islower() and keyword.isupper():
        return keyword.lower()
    return keyword


def _case_hint(tokens: list[Token], partial: str) -> str:
    """The user's casing: the partial word, else the last keyword typed."""
    if partial:
        return partial
    keywords = keyword_text()
    for token in reversed(tokens):
        if token.type in keywords and str(token).isalpha():
            return str(token)
    return ""


def _paths(partial: str, cwd: Path, dirs_only: bool) -> list[str]:
    head, _, tail = partial.rpartition("/")
    base = cwd / os.path.expanduser(head) if head else cwd
    if partial.startswith("/"):
        base = Path(head or "/")
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(tail) or (entry.name.startswith(".") and not tail):
            continue
        is_dir = entry.is_dir()
        if dirs_only and not is_dir:
            continue
        out.append((f"{head}/" if head or partial.startswith("/") else "") + entry.name
                   + ("/" if is_dir else ""))
    return out


def _help_words(tokens: list[str]) -> list[str]:
    typed = [t.upper() for t in tokens[1:]]
    words = set()
    for name in command_names():
        parts = name.split()
        if parts[: len(typed)] == typed and len(parts) > len(typed):
            words.add(parts[len(typed)])
    return sorted(words)


def suggest(text: str, names: NameSource, cwd: Path | None = None) -> list[Suggestion]:
    """Completions for the partial word at the end of text."""
    prefix, partial = split_partial(text)
    expectation = expected_at(prefix)
    wanted = partial.upper()
    case = _case_hint(expectation.tokens, partial)
    out = [Suggestion(_match_case(k, case), "keyword")
           for k in expectation.keywords if k.upper().startswith(wanted)]
    seen = {s.text for s in out}
    for role in expectation.roles:
        kind = ROLE_SOURCES.get(role)
        label = KIND_LABELS.get(kind or "", "command")
        if role == "help_topic":
            candidates = [_match_case(w, case) for w in
                          _help_words([str(t) for t in expectation.tokens])]
        elif kind in ("files", "dirs"):
            candidates = _paths(partial, cwd or Path.cwd(), dirs_only=kind == "dirs")
        elif kind:
            candidates = names.names(kind)
        else:
            candidates = []
        matching = [c for c in candidates if c.upper().startswith(wanted) and c not in seen]
        seen.update(matching)
        out.extend(Suggestion(candidate, label) for candidate in matching)
        if not partial and not matching and role != "help_topic":
            out.append(Suggestion("", "type a value", display=placeholder(role)))
    return out
