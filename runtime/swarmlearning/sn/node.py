"""The Swarm Network node: chain connection, cache, REST API, liveness, and clean shutdown.

The sentinel runs the embedded chain (or deploys to `--eth-rpc`) and serves it as JSON-RPC on
its p2p port. Any other SN asks the sentinel's API where the contracts are, waiting with a log
line per attempt while the sentinel is not up yet, then uses the chain like the sentinel does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from web3 import Web3
from web3.exceptions import Web3RPCError

from swarmlearning import __version__, jsonbody
from swarmlearning.chain.ledger import (
    Addresses,
    Ledger,
    OutdatedContracts,
    check_contracts,
    deploy,
    find_contracts,
)
from swarmlearning.chain.rpc_client import HttpxJsonRpcProvider, RpcUnavailable, provider_for
from swarmlearning.chain.signer import ReceiptTimeout, SignedSender, node_key, passphrase_from
from swarmlearning.defaults import READY_LINES, NodeKind
from swarmlearning.identity.principal import Principal
from swarmlearning.identity.tls import client_context, server_context
from swarmlearning.lifecycle import stop_on_signal
from swarmlearning.nodes.uid import node_uid
from swarmlearning.serve import Listener, serve_all
from swarmlearning.sn import routes as paths
from swarmlearning.sn.api import Endpoint, build_app, endpoints
from swarmlearning.sn.client import SNClient, SNError, SNRefused, SNUnreachable
from swarmlearning.sn.config import SNConfig
from swarmlearning.sn.service import SwarmService
from swarmlearning.sn.view import SwarmView

log = logging.getLogger("swarm.blCnt")
ADDRESSES_FILE = "contracts.json"
READY_LINE = READY_LINES[NodeKind.SN]


class SentinelUnavailable(RuntimeError):
    """The sentinel did not answer within the configured wait."""


class ExternalChainError(RuntimeError):
    """The external Ethereum node cannot be used (unreachable, bad URL, no key, no funds)."""


class _StoppedWaiting(Exception):
    """SIGTERM or SIGINT came while the SN waited for its sentinel: a clean stop."""


class SwarmNetworkNode:
    """One SN process."""

    def __init__(self, config: SNConfig) -> None:
        self.config = config
        self.uid = node_uid(config.data_dir)
        self.server_tls = server_context(config.identity)
        self.client_tls = client_context(config.identity)
        self.chain = None
        self.rpc_port: int | None = None
        self.parent = ""
        self.signer: SignedSender | None = None  # on an external node: this SN's own account
        self._stop = threading.Event()

    # -- chain -------------------------------------------------------------------------------------

    def _external(self, url: str) -> tuple[Web3, SignedSender]:
        """An external Ethereum node, and this SN's signed sender on it."""
        cfg = self.config
        try:
            w3 = Web3(provider_for(url))
            account = node_key(cfg.data_dir, passphrase_from(cfg.eth_key_passphrase_file))
            chain_id = w3.eth.chain_id
            balance = w3.eth.get_balance(account.address)
        except (ValueError, RpcUnavailable) as exc:  # NodeKeyError is a ValueError
            raise ExternalChainError(str(exc)) from None
        log.info("Node account %s on chain %s (balance %s wei)", account.address, chain_id,
                 balance)
        if balance == 0:
            raise ExternalChainError(f"the node account {account.address} has no ether on chain "
                               f"{chain_id} at {url}: fund it (a genesis allocation or a "
                               "transfer) so that this SN can send transactions")
        return w3, SignedSender(w3, account, chain_id)

    def _connect(self) -> tuple[Web3, Addresses]:
        cfg = self.config
        saved = cfg.data_dir / ADDRESSES_FILE
        if cfg.sentinel:
            if cfg.eth_rpc:
                w3, self.signer = self._external(cfg.eth_rpc)
                log.info("Using the Ethereum node at %s", cfg.eth_rpc)
            else:
                from swarmlearning.chain.embedded import EmbeddedChain

                self.chain = EmbeddedChain(cfg.data_dir)
                self.rpc_port = cfg.p2p_port
                w3 = self.chain.web3()
            if saved.exists():
                addresses = Addresses.from_json(json.loads(saved.read_text(encoding="utf-8")))
                if w3.eth.get_code(addresses.tasks):
                    check_contracts(w3, addresses, f"the chain of {cfg.data_dir}")
                    log.info("Contracts found on the chain at block %s", w3.eth.block_number)
                    return w3, addresses
                log.warning("%s names contracts this chain does not hold; deploying anew", saved)
            log.info("Deploying the swarm contracts")
            addresses = deploy(w3, self._sender(w3), self.signer)
            log.info("Deployed the swarm's contracts; other SNs on this network can find them "
                     "with --registry %s", addresses.nodes)
            saved.write_text(json.dumps(addresses.to_json(), indent=1) + "\n", encoding="utf-8")
            return w3, addresses
        if cfg.registry:
            w3, self.signer = self._external(cfg.eth_rpc or "")
            try:
                addresses = find_contracts(w3, cfg.registry)
            except Exception as exc:  # noqa: BLE001 - a wrong address, or an older registry
                raise ExternalChainError(f"--registry {cfg.registry}: {exc}") from None
            check_contracts(w3, addresses, f"the registry {cfg.registry} at {cfg.eth_rpc}")
            log.info("Found the swarm's contracts through the registry %s (block %s)",
                     cfg.registry, w3.eth.block_number)
            return w3, addresses
        info = self._ask_sentinel()
        addresses = Addresses.from_json(info["contracts"])
        self.parent = info.get("uid", "")
        if cfg.eth_rpc:
            url = cfg.eth_rpc
            w3, self.signer = self._external(url)
        else:
            url = f"https://{cfg.sentinel_ip}:{info['rpc_port']}/"
            w3 = Web3(HttpxJsonRpcProvider(url, ssl_context=self.client_tls))
        if w3.eth.chain_id != addresses.chain_id:
            raise RuntimeError(f"the chain at {url} has id {w3.eth.chain_id}; the sentinel's "
                               f"contracts are on chain {addresses.chain_id}")
        check_contracts(w3, addresses, f"the sentinel's chain at {url}")
        log.info("Joined the chain at %s (block %s)", url, w3.eth.block_number)
        return w3, addresses

    def _sender(self, w3: Web3) -> str:
        """Who writes: this SN's own account on an external node, else the embedded chain's."""
        return self.signer.address if self.signer is not None else w3.eth.accounts[0]

    def _ask_sentinel(self) -> dict[str, Any]:
        cfg = self.config
        deadline = time.monotonic() + cfg.sentinel_wait_seconds
        attempt = 0
        with SNClient(cfg.sentinel_ip, cfg.sentinel_api_port, self.client_tls, retry_seconds=0.0,
                      timeout=5.0) as sentinel:
            while True:
                attempt += 1
                try:
                    return sentinel.chain()
                except SNRefused as exc:
                    reason = f"HTTP {exc.status}: {exc.detail}"
                except SNUnreachable as exc:
                    reason = exc.cause
                except SNError as exc:
                    reason = str(exc)
                if self._stop.is_set():
                    raise _StoppedWaiting
                if time.monotonic() >= deadline:
                    raise SentinelUnavailable(
                        f"the sentinel SN at {cfg.sentinel_ip}:{cfg.sentinel_api_port} did not "
                        f"answer in {cfg.sentinel_wait_seconds:g} s ({reason})")
                log.info("Waiting for the sentinel SN at %s:%s (attempt %d): %s",
                         cfg.sentinel_ip, cfg.sentinel_api_port, attempt, reason)
                self._stop.wait(min(2.0, max(0.0, deadline - time.monotonic())))

    # -- running -----------------------------------------------------------------------------------

    def run(self) -> None:
        """Join or start the chain, register, serve until SIGTERM or SIGINT (or until the stop
        event is set, off the main thread), then leave the swarm cleanly."""
        with stop_on_signal(self._stop):
            try:
                self._run()
            except _StoppedWaiting:
                log.info("Stopped while waiting for the sentinel SN")
                log.info("SN stopped")

    def _run(self) -> None:
        cfg = self.config
        log.info("## SWARM LEARNING SN NODE ## uid %s, %s", self.uid, cfg.node_type)
        log.info("Setting up blockchain layer for the swarm node: START")
        w3, addresses = self._connect()
        ledger = Ledger(w3, addresses, self._sender(w3), self.signer)
        view = SwarmView(ledger)
        view.load()
        service = SwarmService(ledger, view,
                               alive_window=3 * self.config.heartbeat_seconds + 2)
        service.register_node(self.uid, cfg.node_type, cfg.host_ip, cfg.api_port, cfg.name,
                              self.parent, owner=Principal.of_pem_file(cfg.identity.cert))
        log.info("Setting up blockchain layer for the swarm node: FINISHED (block %s)",
                 view.block)

        def info() -> dict[str, Any]:
            return {"API_SERVER": f"swarmlearning SN {__version__}", "NODE_UID": self.uid,
                    "NODE_TYPE": cfg.node_type, "CHAIN_ID": addresses.chain_id,
                    "BLOCK": ledger.block_number()}

        table = endpoints(service, info)
        table.append(Endpoint(paths.CHAIN, "Where the chain and the contracts are",
                              lambda p, b: {"uid": self.uid, "rpc_port": self.rpc_port,
                                            "contracts": addresses.to_json()}))
        listeners = [Listener(build_app(table, "Swarm Network API", service.authorize),
                              cfg.host_ip,
                              cfg.api_port, "SN API")]
        if self.chain is not None:
            listeners.append(Listener(rpc_app(self.chain), cfg.host_ip, cfg.p2p_port,
                                      "chain JSON-RPC"))
        heartbeat = threading.Thread(target=self._heartbeat, args=(service,), daemon=True,
                                     name="heartbeat")

        def ready() -> None:
            heartbeat.start()
            if self.chain is not None:
                log.info("Serving the chain as Ethereum JSON-RPC on port: %s", cfg.p2p_port)
            log.info("%s%s", READY_LINE, cfg.api_port)

        try:
            serve_all(listeners, self.server_tls, on_ready=ready, stop=self._stop)
        finally:
            self._stop.set()
            if heartbeat.is_alive():
                heartbeat.join(timeout=5)
            if not cfg.sentinel:
                try:
                    service.deregister_node(self.uid)
                except Exception as exc:  # noqa: BLE001 - the chain may already be gone
                    log.warning("Could not mark this SN as gone: %s", exc)
            if self.chain is not None:
                self.chain.close()
            log.info("SN stopped")

    def _heartbeat(self, service: SwarmService) -> None:
        while not self._stop.wait(self.config.heartbeat_seconds):
            try:
                service.flush_alive([self.uid])
                for swop in service.fail_silent_swops(self.uid):
                    log.warning("SWOP %s went silent during its task: reported ERROR", swop)
            except Exception as exc:  # noqa: BLE001 - a missed beat is logged, not fatal
                log.warning("Liveness update failed: %s", exc)


def rpc_app(chain: Any) -> Starlette:
    """Ethereum JSON-RPC over HTTPS: POST / with a request object or a batch."""
    import anyio.to_thread

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            payload = jsonbody.loads(raw)
        except ValueError:  # not JSON, or nested too deep (TooDeep)
            return JSONResponse({"jsonrpc": "2.0", "id": None,
                                 "error": {"code": -32700, "message": "parse error"}})
        return JSONResponse(await anyio.to_thread.run_sync(chain.handle_rpc, payload))

    return Starlette(routes=[Route("/", endpoint, methods=["POST"])])


def main(argv: list[str] | None = None) -> int:
    """`swci run-sn` and `python -m swarmlearning.sn`."""
    import argparse

    from swarmlearning.identity.tls import IdentityError
    from swarmlearning.logs import setup_logging
    from swarmlearning.serve import PortInUse
    from swarmlearning.sn.config import add_arguments, from_arguments

    parser = argparse.ArgumentParser(prog="swci run-sn",
                                     description="Run a Swarm Network node (SN).")
    add_arguments(parser)
    config = from_arguments(parser.parse_args(argv))
    setup_logging()
    try:
        SwarmNetworkNode(config).run()
    except (IdentityError, PortInUse, SentinelUnavailable, OutdatedContracts,
            ExternalChainError, ReceiptTimeout, Web3RPCError) as exc:
        log.error("%s", exc)
        return 1
    return 0
