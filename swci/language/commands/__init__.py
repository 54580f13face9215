"""Typed SWCI command objects, one class per grammar rule, grouped by area."""

from swci.language.commands.base import COMMAND_CLASSES, Command, CommandValueError
from swci.language.commands.context import (
    CreateContextIp,
    CreateContextService,
    GetContextEnv,
    GetContextInfo,
    GetContextVersion,
    ListContextEnv,
    ListContexts,
    SetContextEnv,
    SwitchContext,
)
from swci.language.commands.contract import (
    CreateContract,
    GetContractInfo,
    GetContractStatus,
    ListContracts,
    Perfdata,
    ResetContract,
)
from swci.language.commands.nodes import (
    ListLocalNodes,
    StartSl,
    StartSn,
    StartSwop,
    StopSl,
    StopSn,
    StopSwarm,
    StopSwop,
)
from swci.language.commands.session import (
    Cd,
    Exit,
    ExitOnFailure,
    Help,
    ListNodes,
    Ls,
    Pwd,
    Sleep,
    WaitForIp,
    WaitForService,
)
from swci.language.commands.task import (
    AppendTaskBody,
    CreateTask,
    CreateTaskFrom,
    DeleteTask,
    FinalizeTask,
    GetTaskBody,
    GetTaskInfo,
    ListTasks,
)
from swci.language.commands.taskrunner import (
    AssignTask,
    AssignTaskAllPeers,
    AssignTaskTarget,
    CreateTaskrunner,
    GetTaskrunnerInfo,
    GetTaskrunnerPeerStatus,
    GetTaskrunnerStatus,
    ListTaskrunnerPeers,
    ListTaskrunners,
    ResetTaskrunner,
    WaitForTaskrunner,
)

__all__ = [
    "COMMAND_CLASSES", "Command", "CommandValueError",
    "CreateContextIp", "CreateContextService", "GetContextEnv", "GetContextInfo",
    "GetContextVersion", "ListContextEnv", "ListContexts", "SetContextEnv", "SwitchContext",
    "CreateContract", "GetContractInfo", "GetContractStatus", "ListContracts", "Perfdata",
    "ResetContract",
    "Cd", "Exit", "ExitOnFailure", "Help", "ListNodes", "Ls", "Pwd", "Sleep", "WaitForIp",
    "WaitForService",
    "AppendTaskBody", "CreateTask", "CreateTaskFrom", "DeleteTask", "FinalizeTask", "GetTaskBody",
    "GetTaskInfo", "ListTasks",
    "AssignTask", "AssignTaskAllPeers", "AssignTaskTarget", "CreateTaskrunner",
    "GetTaskrunnerInfo", "GetTaskrunnerPeerStatus", "GetTaskrunnerStatus", "ListTaskrunnerPeers",
    "ListTaskrunners", "ResetTaskrunner", "WaitForTaskrunner",
    "ListLocalNodes", "StartSl", "StartSn", "StartSwop", "StopSl", "StopSn", "StopSwarm",
    "StopSwop",
]
