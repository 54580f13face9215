"""deploy/ must not rot: the Kubernetes manifests pass a strict schema check of Kubernetes 1.29
(kubernetes-validate, offline), the compose files pass `docker compose config` where the compose
plugin exists, and every swci command line in them, with example values put in, parses with
swci's own option parsers (an option renamed in the code fails here)."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.swarm_processes import ROOT

DEPLOY = ROOT / "deploy"
EXAMPLE = {"SITE_IP": "192.0.2.10", "ORG_INDEX": "2", "SENTINEL_IP": "192.0.2.20",
           "SN_ROLE": "--sentinel-ip 192.0.2.20", "BOOTNODES": "enode://ab@192.0.2.20:30303"}


def parsers() -> dict[str, argparse.ArgumentParser]:
    from swarmlearning.sn.config import add_arguments as sn_arguments
    from swarmlearning.swop.config import add_arguments as swop_arguments
    from swci.web.server import build_parser

    found = {"serve": build_parser()}
    for name, add in (("run-sn", sn_arguments), ("run-swop", swop_arguments)):
        parser = argparse.ArgumentParser(prog=f"swci {name}", exit_on_error=False)
        add(parser)
        found[name] = parser
    return found


def filled(text: str) -> str:
    """${VAR} (compose) and $(VAR) (Kubernetes) replaced by the example values."""
    return re.sub(r"\$[{(](\w+)[})]", lambda m: EXAMPLE[m.group(1)], text)


def check_command(argv: list[str], where: str) -> None:
    if argv[:2] == ["/bin/sh", "-c"]:
        argv = shlex.split(filled(argv[2]))
        assert argv[:2] == ["exec", "swci"], (where, argv)
        argv = argv[2:]
    argv = [filled(str(arg)) for arg in argv]
    sub, rest = argv[0], argv[1:]
    known = parsers()
    assert sub in known, f"{where}: unknown subcommand {sub}"
    try:
        args, unknown = known[sub].parse_known_args(rest)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise AssertionError(f"{where}: swci {sub} refuses {rest}: {exc}") from None
    assert not unknown, f"{where}: swci {sub} has no option {unknown}"


def k8s_documents() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_kubernetes_manifests_pass_a_strict_schema_check() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = k8s_documents()
    assert {doc["metadata"]["name"] for doc in documents} == {"ethereum", "sn", "swop", "swci"}
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, "1.29.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: "
                                 f"{exc.message}") from None


def test_every_swci_command_in_the_manifests_parses() -> None:
    checked = 0
    for doc in k8s_documents():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container["image"].startswith("swci"):
                argv = [*container.get("command", []), *container.get("args", [])]
                check_command(argv, f"k8s {doc['metadata']['name']}")
                checked += 1
    assert checked == 3


def compose_services() -> dict[str, dict]:
    services = {}
    for name in ("compose.yaml", "compose.sentinel.yaml"):
        for service, spec in yaml.safe_load((DEPLOY / name).read_text())["services"].items():
            services[f"{name}:{service}"] = spec
    return services


def test_every_swci_command_in_the_compose_files_parses() -> None:
    checked = [key for key, spec in compose_services().items()
               if "command" in spec and spec.get("image", "swci").startswith("swci")
               and not check_command(spec["command"], key)]
    assert sorted(checked) == ["compose.sentinel.yaml:sn", "compose.yaml:sn",
                               "compose.yaml:swci", "compose.yaml:swop"]


def test_the_compose_files_pass_docker_compose_config(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed here")
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if plugin.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here (docker compose "
                    f"version: {(plugin.stderr or plugin.stdout).strip()[:120]})")
    env = tmp_path / "site.env"
    env.write_text("".join(f"{key}={value}\n" for key, value in EXAMPLE.items()))
    for files in (["compose.yaml"], ["compose.yaml", "compose.sentinel.yaml"]):
        command = ["docker", "compose", "--env-file", str(env)]
        for name in files:
            command += ["-f", str(DEPLOY / name)]
        done = subprocess.run([*command, "config", "-q"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
