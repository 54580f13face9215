"""The nodes of the swarm: register a node and bind its UID to the identity that registered it,
authorize a request to act for a UID, collect signs of life and write them in batches, report
the task of a SWOP that fell silent as failed, deregister, and list the live nodes."""

from __future__ import annotations

from typing import Any

from swarmlearning.chain.ledger import key_of
from swarmlearning.identity.principal import IN_PROCESS, Principal
from swarmlearning.sn.service.base import ServiceBase, ServiceError, check_text, timestamp
from swarmlearning.states import PeerState, RunnerState

NODE_TYPES = ("SENTINEL", "SN", "SL", "SWOP")
# a SWOP's registry name carries the taskrunner it listens on: "<name>|<taskrunner>"
LISTENS_ON = "|"


class NodesMixin(ServiceBase):
    """The node operations of the SN API. The composing class starts `_pending_alive` empty."""

    _pending_alive: set[str]

    def register_node(self, uid: str, node_type: str, host: str, port: int, name: str,
                      parent: str, taskrunner: str = "",
                      owner: Principal = IN_PROCESS) -> dict[str, Any]:
        """Register (or re-register) a node. The first registration binds the UID to `owner`,
        the identity of the certificate it came with; only that identity may register it again
        or act for it (check-ins, merges, progress, liveness, enrolment)."""
        check_text(uid, "uid", limit=64)
        if node_type not in NODE_TYPES:
            raise ServiceError(422, f"node type must be one of {', '.join(NODE_TYPES)}")
        if LISTENS_ON in name:
            raise ServiceError(422, f"a node name may not contain {LISTENS_ON!r}")
        if taskrunner:
            if node_type != "SWOP":
                raise ServiceError(422, "only a SWOP listens on a taskrunner")
            name = f"{name}{LISTENS_ON}{check_text(taskrunner, 'taskrunner')}"
        self.view.sync()
        row = self.view.nodes.rows.get(key_of(uid))
        if row is not None and bytes(row["owner"]) != owner.key:
            raise ServiceError(403, f"node {uid!r} is registered to another identity; the "
                                    f"certificate of this connection, {owner.name}, cannot "
                                    "register it again")
        self._write("nodes", "register", uid, node_type, check_text(host, "host"), int(port),
                    check_text(name, "name", allow_empty=True),
                    check_text(parent, "parent", allow_empty=True, limit=64),
                    owner.key, self._now())
        return {"UUID": uid}

    def authorize(self, uids: list[Any], caller: Principal) -> None:
        """403 unless every one of `uids` is a node registered by `caller`'s identity: a peer
        cannot check in, merge, report or enrol for another node's UID."""
        for uid in uids:
            if not isinstance(uid, str):
                continue  # the handler's own validation names the field
            check_text(uid, "uid", limit=64)
            row = self.view.nodes.rows.get(key_of(uid))
            if row is None or bytes(row["owner"]) != caller.key:
                self.view.sync()  # registered a moment ago, maybe through another SN
                row = self.view.nodes.rows.get(key_of(uid))
            if row is None:
                raise ServiceError(403, f"node {uid!r} is not registered; a node registers "
                                        "with its SN (POST /v1/nodes) before it takes part")
            if bytes(row["owner"]) != caller.key:
                raise ServiceError(403, f"node {uid!r} belongs to another identity; the "
                                        f"certificate of this connection, {caller.name}, "
                                        "cannot act for it")

    def note_alive(self, uids: list[Any]) -> dict[str, Any]:
        """Remember signs of life; flush_alive writes them all in one transaction."""
        for uid in uids:
            self._pending_alive.add(check_text(uid, "uid", limit=64))
        return {"PENDING": len(self._pending_alive)}

    def flush_alive(self, own: list[str]) -> None:
        uids = sorted(set(own) | self._pending_alive)
        self._pending_alive.clear()
        for start in range(0, len(uids), 128):
            self._write("nodes", "alive", [key_of(uid) for uid in uids[start:start + 128]],
                        self._now())

    def fail_silent_swops(self, parent: str) -> list[str]:
        """Report ERROR for the running task of every SWOP of this SN (`parent`) that stopped
        sending signs of life (killed, its host gone): a SWOP that died without a word must not
        leave WAIT FOR TASKRUNNER hanging. ASSIGN TASK ... TARGET <uid> retries it once it is
        back. Returns the SWOP UIDs reported."""
        self.view.sync()
        now = self._now()
        reported = []
        for runner in self.view.runners.listed():
            if runner["state"] != RunnerState.RUNNING:
                continue
            for peer in self.view.peers.get(key_of(runner["name"]), []):
                if peer["status"] not in (PeerState.ENROLLED, PeerState.RUNNING):
                    continue
                node = self.view.nodes.rows.get(key_of(peer["swop_uid"]))
                if node is None or node["parent"] != parent:
                    continue
                silent = now - node["alive_at"]
                if node["active"] and silent <= self.alive_window:
                    continue
                name = node["name"].partition(LISTENS_ON)[0] or peer["swop_uid"]
                why = ("stopped" if not node["active"] else
                       f"sent no sign of life for {silent} s "
                       f"(since {timestamp(node['alive_at'])})")
                self._write("runners", "report", runner["name"], peer["swop_uid"],
                            int(PeerState.ERROR),
                            f"SWOP {name} {why}; its part of task {runner['task']} is lost",
                            f"ASSIGN TASK {runner['task']} TO {runner['name']} TARGET "
                            f"{peer['swop_uid']} retries it once the SWOP is back", now)
                reported.append(peer["swop_uid"])
        return reported

    def deregister_node(self, uid: str) -> None:
        self._write("nodes", "deregister", uid, self._now())

    def list_nodes(self) -> list[dict[str, Any]]:
        self.view.sync()
        now = self._now()
        return [{"NodeType": row["node_type"], "HostIP": row["host"], "Port": row["port"],
                 "ContainerName": row["name"].partition(LISTENS_ON)[0], "UUID": row["uid"],
                 "ParentUUID": row["parent"], "i-am-alive": timestamp(row["alive_at"]),
                 "TASKRUNNER": row["name"].partition(LISTENS_ON)[2],
                 "SECONDS_SINCE_ALIVE": max(0, now - row["alive_at"])}
                for row in self.view.nodes.listed() if row["active"]]
