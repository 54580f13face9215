"""A typed Python client for the SWCI web API (``swci serve``, port 30306), which runs SWCI
commands for a client that it knows by its TLS client certificate; every call is one
``POST /exec?cmd=<command>`` answered ``{"CONTENT": [lines], "DATA": {}}``: ``Client.run``
returns the lines and the structured DATA as they come, and the typed helpers build the command
text (``quote``) and turn DATA into frozen dataclasses, raising the errors of
``swci.client.errors`` and, from ``wait``, ``TaskFailed`` or ``WaitTimeout`` (a TimeoutError)::

    from swci.client import Client

    with Client("sn-host", cert="swci-1-cert.pem", key="swci-1-key.pem", capath="ca/capath") as c:
        c.switch_context("ctx")
        name = c.upload_task("mnist-task.yaml")
        c.create_task_from(name)
        c.finalize_task(name)
        c.assign_task(name, "defaulttaskbb.taskdb.sml.hpe", peers=2)
        status = c.wait("defaulttaskbb.taskdb.sml.hpe", timeout=3600)
"""

from swci.client.client import (
    DEFAULT_PORT,
    DEFAULT_SN_API_PORT,
    Client,
)
from swci.client.client import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from swci.client.client import DEFAULT_WAIT_TIMEOUT as DEFAULT_WAIT_TIMEOUT
from swci.client.errors import (
    CommandError,
    SwciError,
    SwciProtocolError,
    SwciRefused,
    SwciUnavailable,
)
from swci.client.outcomes import TaskFailed, WaitTimeout
from swci.client.quoting import quote
from swci.client.records import TERMINAL_STATES as TERMINAL_STATES
from swci.client.records import (
    CommandResult,
    ContextInfo,
    Node,
    PeerStatus,
    TaskInfo,
    TaskrunnerStatus,
    TaskrunnerSummary,
    TaskSummary,
)

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SN_API_PORT",
    "Client",
    "CommandError",
    "CommandResult",
    "ContextInfo",
    "Node",
    "PeerStatus",
    "SwciError",
    "SwciProtocolError",
    "SwciRefused",
    "SwciUnavailable",
    "TaskFailed",
    "TaskInfo",
    "TaskSummary",
    "TaskrunnerStatus",
    "TaskrunnerSummary",
    "WaitTimeout",
    "quote",
]
