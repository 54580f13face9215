"""The quickstart training with both SNs on a real Ethereum client run as its own process:
ganache 7 from the npm registry (installed here on first use, under .cache/ganache). The
sentinel reaches it over HTTP and the second SN over a WebSocket; each signs with its own key,
funded in ganache's genesis as an operator would fund it on a proof-of-authority network. The
SN code is the one that runs on the embedded chain. Skipped, with the reason, where npm or
Node.js is missing or the package cannot be installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlearning.chain.signer import node_key
from tests.swarm_processes import ROOT, SN, exchange_cas, free_port, make_orgs
from tests.training_swarm import Swarm, peer, result, run_to_end

pytest.importorskip("torch")
pytest.importorskip("sklearn")

GANACHE = "ganache@7.9.2"
CACHE = ROOT / ".cache" / "ganache"
CLI = CACHE / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
PASSPHRASE = "test passphrase"
CHAIN_ID = 4242
READY = "RPC Listening on"


def install() -> Path:
    """ganache's command-line entry point, installed from npm on first use."""
    if CLI.exists():
        return CLI
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and Node.js are needed to install ganache (the external Ethereum "
                    "client of this test)")
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["npm", "install", "--prefix", str(CACHE), "--no-audit",
                               "--no-fund", "--loglevel", "error", GANACHE],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {GANACHE} took more than 300 s")
    if done.returncode != 0 or not CLI.exists():
        pytest.skip(f"npm install {GANACHE} failed: {(done.stderr or done.stdout)[-500:]}")
    return CLI


@pytest.fixture(scope="module")
def ethereum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A ganache process on 127.0.0.1 whose genesis funds the two SNs' node keys."""
    cli = install()
    root = tmp_path_factory.mktemp("ganache")
    keys = [node_key(root / name, PASSPHRASE) for name in ("sn1", "sn2")]
    port = free_port()
    command = ["node", str(cli), "--server.host", "127.0.0.1", "--server.port", str(port),
               "--chain.chainId", str(CHAIN_ID), "--chain.hardfork", "london",
               "--miner.blockGasLimit", "60000000", "--logging.quiet"]
    for key in keys:
        command += ["--wallet.accounts", f"0x{bytes(key.key).hex()},{10**24}"]
    log_path = root / "ganache.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while READY not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "ganache did not start in 60 s"
            time.sleep(0.1)
        yield {"root": root, "port": port, "addresses": [k.address for k in keys]}
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_quickstart_trains_through_an_external_ethereum_client(
        ethereum: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_ETH_KEY_PASSPHRASE", PASSPHRASE)
    root, port = ethereum["root"], ethereum["port"]
    orgs = make_orgs(tmp_path / "pki", "a", "b")
    exchange_cas(orgs["a"], orgs["b"])
    sentinel = SN("sn1", orgs["a"], root / "sn1", tmp_path / "logs" / "sn1.log",
                  extra=["--eth-rpc", f"http://127.0.0.1:{port}"])
    second = SN("sn2", orgs["b"], root / "sn2", tmp_path / "logs" / "sn2.log",
                sentinel_port=sentinel.api_port, extra=["--eth-rpc", f"ws://127.0.0.1:{port}"])
    try:
        sentinel.start().wait_ready()
        second.start().wait_ready()
        swarm = Swarm(orgs, [sentinel, second])
        contract = swarm.new_contract()
        peers = [peer(swarm, tmp_path, index, contract, epochs=4) for index in (1, 2, 3)]
        run_to_end(peers, timeout=300)
        status = swarm.get(f"/v1/contracts/{contract}/status")
    finally:
        second.stop()
        sentinel.stop()
    assert status["STATE"] == "COMPLETED", status
    for node, address in zip((sentinel, second), ethereum["addresses"], strict=True):
        assert f"Node account {address} on chain {CHAIN_ID}" in node.log(), node.log()[-2000:]
        assert "Traceback" not in node.log()
    accuracies = [result(tmp_path, index)["accuracy"] for index in (1, 2, 3)]
    assert len({result(tmp_path, index)["weights"] for index in (1, 2, 3)}) == 1
    assert min(accuracies) > 0.8, accuracies
    print(f"MEASURED quickstart on ganache: {status['ROUND']} rounds, accuracy "
          f"{min(accuracies):.3f} on every peer")
