"""`--eth-rpc URL`: SNs on an Ethereum node they do not run. The node here is a separate
py-evm chain behind a plain HTTP JSON-RPC endpoint in this test process; the sentinel deploys
the contracts to it, a second SN finds them through the sentinel's API, and both see one state."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from swarmlearning.chain.embedded import EmbeddedChain
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


def test_two_sns_share_an_external_chain(tmp_path, ethereum_node):
    url, chain = ethereum_node
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
    finally:
        second.stop()
        sentinel.stop()
