"""The state of one SWCI session: contexts, the current one, working directory, failure policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swarmlearning.defaults import SN_API_PORT, workspace_root

DEFAULT_API_PORT = SN_API_PORT
DEFAULT_SERVICE_PORT = 443
HPE_USR_DIR = "/platform/swarm/usr"


@dataclass
class Context:
    """A named Swarm Network this shell knows: where its API server is, and its env variables."""

    name: str
    host: str
    port: int
    service: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    version: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """host:port of the API server."""
        return f"{self.host}:{self.port}"


@dataclass
class SessionState:
    """Everything one session remembers between commands."""

    cwd: Path
    usr_dir: Path | None = None
    contexts: dict[str, Context] = field(default_factory=dict)
    current: str | None = None
    exit_on_failure: bool = False
    counter: int = 0
    previous_cwd: Path | None = None
    workspace: Path | None = None
    uploads: Path | None = None  # web mode: where this client's uploaded task files are

    def workspace_dir(self) -> Path:
        """Where local nodes live: --workspace, SWARM_WORKSPACE, or ./.swarm from the start."""
        if self.workspace is None:
            self.workspace = workspace_root(cwd=self.cwd).resolve()
        return self.workspace

    @property
    def prompt(self) -> str:
        """The prompt, SWCI:<n> > ."""
        return f"SWCI:{self.counter} > "

    def resolve(self, path: str) -> Path:
        """A user path against the working directory (HPE's /platform/swarm/usr is --usr-dir)."""
        if self.usr_dir is not None and (path == HPE_USR_DIR or path.startswith(HPE_USR_DIR + "/")):
            return (self.usr_dir / path[len(HPE_USR_DIR):].lstrip("/")).resolve()
        return (self.cwd / Path(path).expanduser()).resolve()
