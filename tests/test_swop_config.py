"""run-swop's configuration: options, the profile's apisrv, SWOP_KEEP_CONTAINERS and the
runtime choice."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from swarmlearning.identity.pki import generate_pki
from swarmlearning.swop.config import SwopConfigError, add_arguments, from_arguments
from swarmlearning.swop.node import RuntimeUnavailable, choose_runtime
from swarmlearning.swop.runtimes.process import ProcessRuntime

PROFILES = Path(__file__).parent / "data" / "swop"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return generate_pki(tmp_path_factory.mktemp("pki"), "org", 1)


def config(tmp_path: Path, pki, profile: str, *extra: str):  # noqa: ANN001, ANN201
    shutil.copy(PROFILES / profile, tmp_path / profile)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--usr-dir", str(tmp_path), "--profile-file-name", profile,
                              "--cert", str(pki.cert("swop")), "--key", str(pki.key("swop")),
                              "--capath", str(pki.capath), *extra])
    return from_arguments(args)


def test_options_and_defaults(tmp_path: Path, pki, monkeypatch) -> None:
    monkeypatch.delenv("SWOP_KEEP_CONTAINERS", raising=False)
    cfg = config(tmp_path, pki, "profile_flow_style.yaml", "--sn-ip", "10.1.2.3",
                 "--sn-api-port", "31000", "--name", "swop7")
    assert (cfg.sn_ip, cfg.sn_api_port, cfg.keep) == ("10.1.2.3", 31000, False)
    assert cfg.data_dir == tmp_path.resolve() / "swop-data" / "swop7"
    assert cfg.profile.groupname and cfg.profile.nodes
    monkeypatch.setenv("SWOP_KEEP_CONTAINERS", "True")
    assert config(tmp_path, pki, "profile_two_nodes.yaml").keep is True
    monkeypatch.setenv("SWOP_KEEP_CONTAINERS", "maybe")
    with pytest.raises(SwopConfigError, match="SWOP_KEEP_CONTAINERS"):
        config(tmp_path, pki, "profile_two_nodes.yaml")


def test_the_profile_apisrv_wins_over_the_options(tmp_path: Path, pki) -> None:
    cfg = config(tmp_path, pki, "profile_reverse_proxy.yaml", "--sn-ip", "10.0.0.1",
                 "--sn-api-port", "1000")
    assert (cfg.sn_ip, cfg.sn_api_port) == ("api.sn-edge.swarm", 443)
    cfg = config(tmp_path, pki, "profile_two_nodes.yaml", "--sn-ip", "10.0.0.1")
    assert (cfg.sn_ip, cfg.sn_api_port) == ("<SN-ADDRESS>", 30304)
    cfg = config(tmp_path, pki, "profile_flow_style.yaml", "--sn-api-service", "sn.example:7")
    assert (cfg.sn_ip, cfg.sn_api_port) == ("sn.example", 7)


def test_a_missing_or_bad_profile_is_a_config_error(tmp_path: Path, pki) -> None:
    with pytest.raises(SwopConfigError, match="does not exist"):
        config(tmp_path, pki, "profile_two_nodes.yaml", "--profile-file-name", "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text((PROFILES / "profile_two_nodes.yaml").read_text().replace("idx", "index", 1))
    with pytest.raises(SwopConfigError, match=r"bad.yaml:\d+:\d+: nodes\[0\]\.slnodedef"):
        config(tmp_path, pki, "profile_two_nodes.yaml", "--profile-file-name", "bad.yaml")


def test_the_runtime_follows_the_profile_and_the_engine(tmp_path: Path, pki,
                                                        monkeypatch) -> None:
    monkeypatch.setattr("swarmlearning.swop.runtimes.docker.docker_available",
                        lambda: (False, "no Docker engine is reachable: test"))
    docker_profile = config(tmp_path, pki, "profile_two_nodes.yaml")
    assert docker_profile.profile.mgrtype == "DOCKER"
    assert isinstance(choose_runtime(docker_profile)(), ProcessRuntime)
    process_profile = config(tmp_path, pki, "profile_spire_process.yaml")
    assert isinstance(choose_runtime(process_profile)(), ProcessRuntime)
    forced = config(tmp_path, pki, "profile_two_nodes.yaml", "--runtime", "docker")
    with pytest.raises(RuntimeUnavailable, match="--runtime docker: no Docker engine"):
        choose_runtime(forced)
