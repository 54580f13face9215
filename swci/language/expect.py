"""What may come next at a point in a line: keywords and argument roles, from the LALR tables.

The completer and the syntax-error messages both ask this module. It feeds the line prefix to
Lark's interactive parser; the terminals it accepts give the keywords, and for a value terminal
(a word, a number) a trial feed shows which role rule the value would be reduced into.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field

from lark import Token, Tree, UnexpectedInput
from lark.parsers.lalr_interactive_parser import InteractiveParser

from swci.language.grammar import line_parser, terminal_literals
from swci.language.syntax import placeholder

VALUE_TERMINALS = ("WORD", "STRING", "INT", "NUMBER", "BODY_LINE")
_PROBE = "\x00probe\x00"


@dataclass
class Expectation:
    """Keywords (as written in the grammar) and argument roles that may come next."""

    keywords: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    end_ok: bool = False
    tokens: list[Token] = field(default_factory=list)


@functools.cache
def keyword_text() -> dict[str, str]:
    """Keyword terminal name -> the literal as the grammar writes it (e.g. CREATE -> CREATE)."""
    return {name: literal for name, literal in terminal_literals().items()
            if name not in VALUE_TERMINALS and not name.startswith("_")}


def interactive_after(prefix: str) -> tuple[InteractiveParser, list[Token]] | None:
    """The interactive parser after the complete tokens of prefix; None if prefix is invalid."""
    parser = line_parser().parse_interactive(prefix)
    try:
        tokens = list(parser.iter_parse())
    except UnexpectedInput:
        return None
    return parser, tokens


def _roles_of(parser: InteractiveParser, terminal: str) -> set[str]:
    """The role rules a value of this terminal would become at the parser's position."""
    trial = parser.copy()
    try:
        trial.feed_token(Token(terminal, _PROBE))
    except UnexpectedInput:
        return set()
    roles: set[str] = set()
    for lookahead in trial.accepts():
        again = trial.copy()
        try:
            if lookahead == "$END":
                result = again.feed_eof()
                roles |= _roles_in([result])
            else:
                again.feed_token(Token(lookahead, _PROBE + "next"))
                roles |= _roles_in(again.parser_state.value_stack)
        except UnexpectedInput:
            continue
    return roles


def _roles_in(values: list[object]) -> set[str]:
    found: set[str] = set()
    for value in values:
        if isinstance(value, Tree):
            for sub in value.iter_subtrees():
                if any(isinstance(c, Token) and c == _PROBE for c in sub.children):
                    found.add(str(sub.data))
    return found


def expected_at(prefix: str) -> Expectation:
    """What may follow the complete tokens of prefix (empty if prefix itself is invalid)."""
    state = interactive_after(prefix)
    if state is None:
        return Expectation()
    parser, tokens = state
    accepted = parser.accepts()
    names = keyword_text()
    expectation = Expectation(end_ok="$END" in accepted, tokens=tokens)
    expectation.keywords = sorted(names[t] for t in accepted if t in names)
    roles: set[str] = set()
    for terminal in VALUE_TERMINALS:
        if terminal in accepted:
            roles |= _roles_of(parser, terminal)
    expectation.roles = sorted(roles)
    return expectation


def describe_expected(expectation: Expectation) -> str:
    """A short human list of what fits: 'CONTRACT, CONTEXT or <TaskName : string>'."""
    items = [k.upper() if k.isalpha() and len(k) > 3 else k for k in expectation.keywords]
    items += [placeholder(role) for role in expectation.roles]
    if expectation.end_ok and items:
        items.append("end of line")
    if not items:
        return "end of line" if expectation.end_ok else ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def suggest_keyword(word: str, expectation: Expectation) -> str | None:
    """The closest expected keyword to a mistyped word, if one is close."""
    if not expectation.keywords:
        return None
    upper = {k.upper(): k for k in expectation.keywords}
    close = difflib.get_close_matches(word.upper(), list(upper), n=1, cutoff=0.6)
    return upper[close[0]] if close else None
