"""HELP syntax lines rendered from the grammar: CREATE CONTRACT <TrainingContractName : string>.

The .lark file is read as text: each rule's alternatives are tokenised and rendered, keywords as
written, role rules as <PascalName : type> placeholders, [..] and x* as optional parts. A rule may
carry a `//@ syntax:` line right above it that replaces the rendering (see the grammar's header).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from swci.language.grammar import grammar_text, terminal_literals

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"i?'          # "keyword"i
                    r'|/(?:[^/\\]|\\.)*/[a-z]*'       # /regexp/flags
                    r'|->|[A-Za-z_][A-Za-z_0-9.]*|[\[\]()|*+?]')
_RULE_HEAD = re.compile(r"^([?!]?)([a-z_][a-z_0-9]*)(\.\d+)?\s*:(.*)$")
_TYPES = {"INT": "int", "NUMBER": "number", "BODY_LINE": "text", "_value": "string",
          "WORD": "string", "STRING": "string"}


@dataclass(frozen=True)
class RuleSource:
    """One rule of the grammar as written: its alternatives (token lists) and syntax override."""

    name: str
    alternatives: tuple[tuple[str, ...], ...]
    aliases: tuple[str | None, ...]
    override: str | None


def _strip_comment(line: str) -> str:
    out, quote = [], False
    for i, ch in enumerate(line):
        if ch == '"':
            quote = not quote
        if not quote and line.startswith("//", i):
            break
        out.append(ch)
    return "".join(out)


@functools.cache
def grammar_rules() -> dict[str, RuleSource]:
    """Every rule of the grammar, by name, parsed from the grammar text."""

    rules: dict[str, RuleSource] = {}
    pending_override: str | None = None
    current: tuple[str, list[str], str | None] | None = None

    def finish() -> None:
        if current is None:
            return
        name, body, override = current
        alternatives, aliases = [], []
        for part in _split_alternatives(" ".join(body)):
            tokens = _TOKEN.findall(part)
            alias = None
            if "->" in tokens:
                alias = tokens[tokens.index("->") + 1]
                tokens = tokens[: tokens.index("->")]
            alternatives.append(tuple(tokens))
            aliases.append(alias)
        rules[name] = RuleSource(name, tuple(alternatives), tuple(aliases), override)

    for raw in grammar_text().splitlines():
        if raw.startswith("//@ syntax:"):
            pending_override = raw.split(":", 1)[1].strip()
            continue
        line = _strip_comment(raw)
        head = _RULE_HEAD.match(line)
        if head:
            finish()
            current = (head.group(2), [head.group(4)], pending_override)
            pending_override = None
        elif current is not None and line.strip().startswith("|"):
            current[1].append(line)
        elif line.strip():
            finish()
            current = None
    finish()
    return rules


def _split_alternatives(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p for p in (p.strip() for p in parts) if p]


def pascal(role: str) -> str:
    """training_contract_name -> TrainingContractName."""
    return "".join(part.capitalize() for part in role.split("_"))


def role_type(role: str) -> str:
    """The display type of a role rule: string, int, number, text, or its keyword choices."""

    rule = grammar_rules().get(role)
    if rule is None:
        return "string"
    kinds: list[str] = []
    for alternative in rule.alternatives:
        for token in alternative:
            if token in _TYPES:
                kind = _TYPES[token]
            elif token.isupper():
                kind = terminal_literals().get(token, token)
            else:
                continue
            if kind not in kinds:
                kinds.append(kind)
    return "|".join(kinds) or "string"


def flag_keyword(role: str) -> str | None:
    """The keyword of a flag role (one rule, one keyword terminal, e.g. sentinel: SENTINEL)."""
    rule = grammar_rules().get(role)
    if rule is None or len(rule.alternatives) != 1 or len(rule.alternatives[0]) != 1:
        return None
    token = rule.alternatives[0][0]
    if token in _TYPES or not token.isupper():
        return None
    return role_type(role)


def placeholder(role: str, optional: bool = False, many: bool = False) -> str:
    """<TaskName : string>, or [Port : int] when optional, with ' ...' when repeated; a flag
    role is its keyword."""
    flag = flag_keyword(role)
    if flag is not None:
        return f"[{flag}]" if optional else flag
    inner = f"{pascal(role)} : {role_type(role)}" + (" ..." if many else "")
    return f"[{inner}]" if optional else f"<{inner}>"


def _render(tokens: tuple[str, ...]) -> list[str]:
    """Render one alternative's tokens into syntax items."""
    items: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.startswith('"'):
            items.append(token.rstrip("i")[1:-1])
        elif token == "[":
            depth, j = 1, i + 1
            while depth:
                depth += {"[": 1, "]": -1}.get(tokens[j], 0)
                j += 1
            inner = tokens[i + 1: j - 1]
            if len(inner) == 1 and _is_role(inner[0]):
                items.append(placeholder(inner[0], optional=True))
            else:
                rendered = _render(inner)
                if rendered:
                    items.append("[" + " ".join(rendered) + "]")
            i = j
            continue
        elif _is_role(token):
            many = nxt in ("*", "+")
            items.append(placeholder(token, optional=nxt == "*", many=many))
            if many:
                i += 1
        i += 1
    return items


def _is_role(token: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z_0-9]*", token))


def _merge(lines: list[list[str]]) -> list[list[str]]:
    """Fold an alternative that is another with one item left out into [item]."""
    merged: list[list[str]] = []
    for items in lines:
        for k, other in enumerate(merged):
            longer, shorter = (items, other) if len(items) > len(other) else (other, items)
            if len(longer) != len(shorter) + 1:
                continue
            for gap in range(len(longer)):
                if longer[:gap] + longer[gap + 1:] == shorter:
                    item = longer[gap]
                    if item.startswith("<"):
                        item = "[" + item[1:-1] + "]"
                    elif not item.startswith("["):
                        item = f"[{item}]"
                    merged[k] = longer[:gap] + [item] + longer[gap + 1:]
                    break
            else:
                continue
            break
        else:
            merged.append(items)
    return merged


@functools.cache
def syntax_lines(rule: str) -> tuple[str, ...]:
    """The HELP syntax line(s) of a command rule, rendered from the grammar."""
    source = grammar_rules()[rule]
    if source.override:
        return (source.override,)
    rendered = [_render(alternative) for alternative in source.alternatives]
    return tuple(" ".join(items) for items in _merge(rendered))


@functools.cache
def command_name(rule: str) -> str:
    """The command's name: the leading keywords of its first alternative (e.g. ASSIGN TASK)."""
    words = []
    for token in grammar_rules()[rule].alternatives[0]:
        if not token.startswith('"'):
            break
        words.append(token.rstrip("i")[1:-1])
    return " ".join(words)
