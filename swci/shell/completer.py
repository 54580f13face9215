"""The prompt_toolkit completer over swci.shell.completion."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from swci.shell.completion import NameSource, split_partial, suggest


class SwciCompleter(Completer):
    """Keywords legal at the cursor and live names, from the grammar and a NameSource."""

    def __init__(self, names: NameSource, cwd: Callable[[], Path] = Path.cwd) -> None:
        self.names = names
        self.cwd = cwd

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        _, partial = split_partial(text)
        for item in suggest(text, self.names, self.cwd()):
            yield Completion(item.text, start_position=-len(partial),
                             display=item.display or None, display_meta=item.meta)
