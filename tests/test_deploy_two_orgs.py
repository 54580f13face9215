"""docs/deployment.md as written, scripted: deploy/two-orgs-netns.sh brings up two
organisations on two network namespaces (their own PKIs, CA exchange, node keys, an external
Ethereum node, the sentinel SN, the second SN), and SWCI at one sees what the other made.
Skipped, with the reason, without root, iproute2, or ganache (npm)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.swarm_processes import ROOT
from tests.test_external_ethereum import install

SCRIPT = ROOT / "deploy" / "two-orgs-netns.sh"


def test_two_organisations_come_up_as_the_deployment_guide_says(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's `ip`")
    cli = install()
    env = {**os.environ, "GANACHE_CLI": str(cli), "SWCI": f"{sys.executable} -m swci",
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "work")], capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "two organisations up" in done.stdout
    # the script removed its namespaces
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "swci-orga-" not in listed and "swci-orgb-" not in listed
