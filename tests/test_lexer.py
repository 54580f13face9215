"""Highlighting follows the grammar: keywords, names, numbers, comments, and the error point."""

from __future__ import annotations

from swci.shell.lexer import highlight


def styled(line: str) -> list[tuple[str, str]]:
    return [(style, text) for style, text in highlight(line) if text.strip()]


def test_valid_line():
    assert styled("ASSIGN TASK t1 TO tr WITH 2 PEERS") == [
        ("class:keyword", "ASSIGN"), ("class:keyword", "TASK"), ("class:name", "t1"),
        ("class:keyword", "TO"), ("class:name", "tr"), ("class:keyword", "WITH"),
        ("class:number", "2"), ("class:keyword", "PEERS")]


def test_comment():
    assert styled("LIST TASKS # all") == [
        ("class:keyword", "LIST"), ("class:keyword", "TASKS"), ("class:comment", "# all")]
    assert styled("# only") == [("class:comment", "# only")]


def test_error_from_the_start_of_the_first_bad_word():
    assert styled("LIST TASKSS now")[-1] == ("class:error", "TASKSS now")
    assert styled("FOO BAR") == [("class:error", "FOO BAR")]
    assert styled("LIST TASKSS")[-1] == ("class:error", "TASKSS")


def test_incomplete_line_is_not_an_error():
    for line in ("CREATE CONTRACT", "HEL", "CREATE CONT", "LIST TASK", 'SET CONTEXT ENV k "a b'):
        assert all(style != "class:error" for style, _ in styled(line)), line


def test_fragments_cover_the_line():
    line = 'SET CONTEXT ENV k "v w"  # x'
    assert "".join(text for _, text in highlight(line)) == line
