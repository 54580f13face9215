"""MAKE_USER_CONTAINER in the process runtime: an isolated virtual environment, named by the
task's Outcome, built from the task's BuildSteps.

The environment sees the SWOP's own installation (a `.pth` file adds the SWOP's site-packages
after its own, so this package, numpy and torch need no second copy), and whatever the steps
install goes into it alone and takes precedence. Steps are
read as Dockerfile lines: `RUN pip install ...` (also `pip3`, `python -m pip`, joined by `&&`)
runs in the environment; `COPY src dst` copies from the BuildContext volume into the
environment's root, where absolute paths in later steps are found; `ENV` is kept for the ML
programs that run in it; `FROM`, `WORKDIR` and every other command are logged as skipped, since
a process has no image to change. The HPE client wheel is skipped: this installation provides
`swarmlearning`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swarmlearning.swop.processes import run_logged
from swarmlearning.swop.tasks import TaskFailed

ENV_FILE = "swop-env.json"
ROOT_DIR = "root"
CLIENT_WHEEL = re.compile(r"(hpe[_-])?swarmlearning([_-]client)?[-_].*\.whl$", re.IGNORECASE)
PIP_WORDS = {"pip", "pip3"}
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass
class UserEnv:
    """A built user environment: its directory, interpreter and kept ENV values."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def root(self) -> Path:
        return self.path / ROOT_DIR

    @classmethod
    def load(cls, path: Path) -> UserEnv | None:
        if not (path / "bin" / "python").exists():
            return None
        try:
            env = json.loads((path / ENV_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            env = {}
        return cls(path, {str(k): str(v) for k, v in env.items()})


def join_steps(steps: Sequence[str]) -> list[tuple[int, str]]:
    """Dockerfile lines from BuildSteps: blank items dropped, `\\` continuations joined; each
    with the index of its first item (for error messages)."""
    joined: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for index, raw in enumerate(steps):
        line = str(raw).rstrip()
        if not pending:
            start = index
            if not line.strip():
                continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        joined.append((start, (pending + line.strip()).strip()))
        pending = ""
    if pending.strip():
        joined.append((start, pending.strip()))
    return joined


def _pip_args(words: list[str]) -> list[str] | None:
    """The arguments after `install` when `words` is a pip install command, else None."""
    if words and words[0] in PIP_WORDS:
        rest = words[1:]
    elif len(words) >= 3 and re.fullmatch(r"python[0-9.]*", words[0]) and words[1:3] == [
            "-m", "pip"]:
        rest = words[3:]
    else:
        return None
    return rest[1:] if rest[:1] == ["install"] else None


class EnvBuilder:
    """Builds one user environment from BuildSteps."""

    def __init__(self, target: Path, context: Path | None, log: Callable[[str], None],
                 log_path: Path, stop: threading.Event | None = None) -> None:
        self.target = target
        self.context = context
        self.log = log
        self.log_path = log_path
        self.stop = stop
        self.env: dict[str, str] = {}
        self.missing_context = ""

    def build(self, steps: Sequence[str]) -> UserEnv:
        """Build afresh in place (a venv's scripts name their interpreter by absolute path);
        a failed build leaves nothing behind."""
        shutil.rmtree(self.target, ignore_errors=True)
        try:
            self._create(self.target)
            user_env = UserEnv(self.target)
            user_env.root.mkdir()
            for index, line in join_steps(steps):
                self._step(user_env, index, line)
            (self.target / ENV_FILE).write_text(json.dumps(self.env, indent=1),
                                                encoding="utf-8")
        except BaseException:
            shutil.rmtree(self.target, ignore_errors=True)
            raise
        return UserEnv(self.target, dict(self.env))

    def _create(self, path: Path) -> None:
        command = [sys.executable, "-m", "venv", "--without-pip", str(path)]
        path.parent.mkdir(parents=True, exist_ok=True)
        status, output = run_logged(command, cwd=path.parent, env=os.environ,
                                    log_path=self.log_path, stop=self.stop, timeout=300)
        if status != 0:
            raise TaskFailed(f"could not create the environment {path.name}: venv exited "
                             f"{status}", _tail(output))
        inherit_site_packages(path)


    def _step(self, user_env: UserEnv, index: int, line: str) -> None:
        word, _, rest = line.partition(" ")
        where = f"BuildSteps[{index}]"
        keyword = word.upper()
        if keyword == "RUN":
            self._run(user_env, where, rest.strip())
        elif keyword == "COPY" or keyword == "ADD" and not re.match(r"\w+://", rest.strip()):
            self._copy(user_env, where, rest.strip())
        elif keyword == "ENV":
            self._env(where, rest.strip())
        else:
            self.log(f"{where}: {keyword} skipped (no image in the process runtime)")

    def _run(self, user_env: UserEnv, where: str, command: str) -> None:
        for part in (p.strip() for p in command.split("&&")):
            try:
                words = shlex.split(part)
            except ValueError as exc:
                raise TaskFailed(f"{where}: cannot read the RUN command: {exc}") from None
            args = _pip_args(words)
            if args is None:
                self.log(f"{where}: RUN {part[:60]} skipped (only pip install runs here)")
                continue
            args = self._pip_targets(user_env, where, args)
            if not [a for a in args if not a.startswith("-")]:
                continue
            if not pip_supports_python_option():
                raise TaskFailed(f"{where}: the SWOP's pip is older than 22.3 and cannot install "
                                 "into another environment; upgrade pip where the SWOP runs")
            self.log(f"{where}: pip install {' '.join(args)}")
            command_line = [sys.executable, "-m", "pip", "--python", str(user_env.python),
                            "install", "--disable-pip-version-check", *args]
            env = {**os.environ, **self.env, "PIP_NO_INPUT": "1"}
            status, output = run_logged(command_line, cwd=user_env.root, env=env,
                                        log_path=self.log_path, stop=self.stop, timeout=3600)
            if status != 0:
                raise TaskFailed(f"{where}: pip install failed (exit {status})", _tail(output))

    def _pip_targets(self, user_env: UserEnv, where: str, args: list[str]) -> list[str]:
        kept = []
        for arg in args:
            name = re.split(r"[=<>!~\[; ]", arg, maxsplit=1)[0].lower()
            if name in ("pip", "setuptools", "wheel") and not arg.startswith("-"):
                self.log(f"{where}: {arg} skipped (the environment uses the SWOP's pip)")
                continue
            if CLIENT_WHEEL.search(arg):
                self.log(f"{where}: {Path(arg).name} skipped (swarmlearning is provided by "
                         "this installation)")
                continue
            if arg.startswith("/"):
                mapped = user_env.root / arg.lstrip("/")
                arg = str(mapped)
            kept.append(arg)
        return kept

    def _copy(self, user_env: UserEnv, where: str, args: str) -> None:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if len(words) < 2:
            raise TaskFailed(f"{where}: COPY needs a source and a destination")
        if self.context is None:
            if self.missing_context:
                raise TaskFailed(f"{where}: COPY needs the BuildContext volume "
                                 f"{self.missing_context}, which is not on this SWOP")
            raise TaskFailed(f"{where}: COPY needs a BuildContext, and the task has none")
        *sources, dest = words
        base = self.context.resolve()
        root = user_env.root.resolve()
        target = (root / dest.lstrip("/")).resolve()
        if not target.is_relative_to(root):
            raise TaskFailed(f"{where}: COPY destination {dest} is outside the environment")
        for source in sources:
            path = (base / source).resolve()
            if not path.is_relative_to(base):
                raise TaskFailed(f"{where}: COPY source {source} is outside the BuildContext")
            matches = sorted(path.parent.glob(path.name)) if any(c in source for c in "*?[") \
                else [path]
            if not matches or not matches[0].exists():
                raise TaskFailed(f"{where}: COPY source {source} is not in the BuildContext "
                                 f"{self.context.name}")
            for match in matches:
                if not match.resolve().is_relative_to(base):
                    raise TaskFailed(f"{where}: COPY source {match.name} leads outside the "
                                     "BuildContext")
                into = target / match.name if dest.endswith("/") or len(matches) > 1 else target
                into.parent.mkdir(parents=True, exist_ok=True)
                if match.is_dir():
                    shutil.copytree(match, into, symlinks=True, dirs_exist_ok=True)
                else:
                    shutil.copy2(match, into, follow_symlinks=False)
        self.log(f"{where}: COPY {' '.join(sources)} -> {dest}")

    def _expand(self, value: str) -> str:
        """$NAME and ${NAME} from earlier ENV steps, else from the SWOP's environment (so
        `ENV PATH=/opt/bin:$PATH` extends the PATH the ML gets)."""
        known = {**os.environ, **self.env}
        return VARIABLE.sub(lambda m: known.get(m.group(1) or m.group(2), ""), value)

    def _env(self, where: str, args: str) -> None:
        try:
            words = shlex.split(args)
        except ValueError as exc:
            raise TaskFailed(f"{where}: cannot read ENV: {exc}") from None
        if words and all("=" in w for w in words):
            for word in words:
                name, _, value = word.partition("=")
                self.env[name] = self._expand(value)
        elif len(words) >= 2:
            self.env[words[0]] = self._expand(" ".join(words[1:]))
        else:
            raise TaskFailed(f"{where}: ENV needs NAME=VALUE")
        self.log(f"{where}: ENV kept for the ML programs")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@functools.cache
def pip_supports_python_option() -> bool:
    """pip 22.3 and newer take --python; older ones cannot install into another environment."""
    result = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                            text=True, timeout=60)
    match = re.search(r"pip (\d+)\.(\d+)", result.stdout)
    return bool(match) and (int(match[1]), int(match[2])) >= (22, 3)


def inherit_site_packages(venv: Path) -> None:
    """Let the venv at `venv` import what the running interpreter can, after its own packages."""
    found = list(venv.glob("lib/python*/site-packages"))
    if not found:
        raise TaskFailed(f"the environment {venv.name} has no site-packages directory")
    paths = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    lines = [f"import site; site.addsitedir({path!r})" for path in paths]
    (found[0] / "swop-base.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
