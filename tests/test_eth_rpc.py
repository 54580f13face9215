"""`--eth-rpc URL`: SNs on an Ethereum node they do not run. The node here is a separate
py-evm chain behind a plain HTTP JSON-RPC endpoint in this test process; each SN signs with its
own key (an encrypted keystore in its data directory, funded here from the chain's first
account), the sentinel deploys the contracts to it, a second SN finds them through the
sentinel's API, and both see one state."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from swarmlearning.chain.embedded import EmbeddedChain
from swarmlearning.chain.signer import KEYSTORE_FILE, node_key
from tests.swarm_processes import SN, exchange_cas, identity_env, make_orgs, output_lines, run_swci


@pytest.fixture
def ethereum_node():
    chain = EmbeddedChain(None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = json.dumps(chain.handle_rpc(json.loads(body))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", chain
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


PASSPHRASE = "correct horse battery staple"


def fund(chain: EmbeddedChain, *data_dirs) -> list[str]:
    """Make each SN's node key (as the SN would) and give its account ether."""
    w3 = chain.web3()
    addresses = []
    for data_dir in data_dirs:
        account = node_key(data_dir, PASSPHRASE)
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address,
                                 "value": 10**21})
        addresses.append(account.address)
    return addresses


def test_two_sns_share_an_external_chain(tmp_path, ethereum_node, monkeypatch):
    url, chain = ethereum_node
    monkeypatch.setenv("SWARM_ETH_KEY_PASSPHRASE", PASSPHRASE)
    addresses = fund(chain, tmp_path / "ext1", tmp_path / "ext2")
    orgs = make_orgs(tmp_path / "pki", "a", "b")
    exchange_cas(orgs["a"], orgs["b"])
    sentinel = SN("ext1", orgs["a"], tmp_path / "ext1", tmp_path / "ext1.log",
                  extra=["--eth-rpc", url])
    second = SN("ext2", orgs["b"], tmp_path / "ext2", tmp_path / "ext2.log",
                sentinel_port=sentinel.api_port, extra=["--eth-rpc", url])
    try:
        sentinel.start().wait_ready()
        second.start().wait_ready()
        assert "Using the Ethereum node at " + url in sentinel.log()
        assert f"Joined the chain at {url}" in second.log()
        assert chain.web3().eth.block_number > 4  # the deployment landed on the external node
        usr = tmp_path / "usr"
        usr.mkdir()
        made = run_swci(cwd=usr, env=identity_env(orgs["a"]), stdin=(
            f"create context a with ip 127.0.0.1 {sentinel.api_port}\nswitch context a\n"
            "create task PULL_IMAGE pull_task me ROOTTASK img\nfinalize task pull_task\n"))
        assert made.returncode == 0 and "Task Finalized : pull_task" in made.stdout, made.stdout
        seen = run_swci(cwd=usr, env=identity_env(orgs["b"]), stdin=(
            f"create context b with ip 127.0.0.1 {second.api_port}\nswitch context b\n"
            "list tasks\n"))
        assert output_lines(seen)[-2:] == ["ROOTTASK", "pull_task"], seen.stdout
        # the embedded chain was not used: no chain file, no JSON-RPC port of its own
        assert not (tmp_path / "ext1" / "chain.sqlite").exists()
        assert "Serving the chain" not in sentinel.log()
        # each SN sent its transactions from its own account
        w3 = chain.web3()
        senders = {w3.eth.get_transaction_by_block(n, 0)["from"]
                   for n in range(1, w3.eth.block_number + 1)
                   if w3.eth.get_block(n)["transactions"]}
        assert set(addresses) <= senders, (addresses, senders)
        assert f"Node account {addresses[1]}" in second.log()
        # a third SN needs only the network and the registry's address, not the sentinel
        registry = json.loads((tmp_path / "ext1" / "contracts.json").read_text())["nodes"]
        assert f"--registry {registry}" in sentinel.log()
        fund(chain, tmp_path / "ext3")
        third = SN("ext3", orgs["b"], tmp_path / "ext3", tmp_path / "ext3.log",
                   extra=["--eth-rpc", url], registry=registry)
        try:
            third.start().wait_ready()
            assert f"through the registry {registry}" in third.log()
            listed = run_swci(cwd=usr, env=identity_env(orgs["b"]), stdin=(
                f"create context c with ip 127.0.0.1 {third.api_port}\nswitch context c\n"
                "list tasks\n"))
            assert output_lines(listed)[-2:] == ["ROOTTASK", "pull_task"], listed.stdout
        finally:
            third.stop()
    finally:
        second.stop()
        sentinel.stop()


def refused_start(name: str, layout, data_dir, log, url: str) -> str:
    """Start an SN on the node that must refuse to run; its exit 1 and its log."""
    sn = SN(name, layout, data_dir, log, extra=["--eth-rpc", url])
    try:
        sn.start()
        assert sn.process.wait(timeout=60) == 1
    finally:
        sn.stop()
    assert "Traceback" not in sn.log()
    return sn.log()


def test_an_unfunded_key_or_a_wrong_passphrase_is_named(tmp_path, ethereum_node, monkeypatch):
    url, chain = ethereum_node
    orgs = make_orgs(tmp_path / "pki", "a")
    monkeypatch.setenv("SWARM_ETH_KEY_PASSPHRASE", PASSPHRASE)
    log = refused_start("poor", orgs["a"], tmp_path / "poor", tmp_path / "poor.log", url)
    account = node_key(tmp_path / "poor", PASSPHRASE)  # the key the SN made
    assert f"the node account {account.address} has no ether" in log
    assert oct((tmp_path / "poor" / KEYSTORE_FILE).stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("SWARM_ETH_KEY_PASSPHRASE", "wrong")
    log = refused_start("poor2", orgs["a"], tmp_path / "poor", tmp_path / "poor2.log", url)
    assert "the passphrase does not open this key" in log, log
