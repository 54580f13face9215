"""The bottom toolbar: the active context, the failure policy, and where help is."""

from __future__ import annotations

from swci.interpreter import Interpreter


def toolbar_text(interp: Interpreter) -> str:
    """One line describing the session."""
    state = interp.state
    if state.current and state.current in state.contexts:
        context = state.contexts[state.current]
        where = f"{context.name} ({context.service or context.endpoint})"
    else:
        where = "no context"
    failure = "on" if state.exit_on_failure else "off"
    return f" {where} | EXIT ON FAILURE {failure} | HELP  Tab  Ctrl-D exits"
