"""The SWCI interpreter: session state, command execution, output sinks and handlers."""

from swci.interpreter.interpreter import CommandFailed, ExitCode, Interpreter, Outcome
from swci.interpreter.output import CollectingOutput, Output, StreamOutput
from swci.interpreter.state import Context, SessionState

__all__ = ["CollectingOutput", "CommandFailed", "Context", "ExitCode", "Interpreter", "Outcome",
           "Output", "SessionState", "StreamOutput"]
