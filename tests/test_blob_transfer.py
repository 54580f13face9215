"""Blobs between SLs: the store (in memory and on disk), the file server and the fetcher, over
real mutual TLS on 127.0.0.1. A fetch either returns the exact bytes named by the hash or
raises FetchError with the reason; nothing it reads is unbounded."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from swarmlearning.identity import generate_pki
from swarmlearning.identity.tls import Identity, client_context, server_context
from swarmlearning.sl.blobs import BlobStore, BlobStoreError
from swarmlearning.sl.fileserver import file_server
from swarmlearning.sl.peerfetch import FetchError, PeerFetcher
from swarmlearning.weights import digest, from_bytes, to_bytes


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Identity:
    pki = generate_pki(tmp_path_factory.mktemp("pki"), "org-blobs", 1)
    return Identity(cert=pki.cert("sl"), key=pki.key("sl"), capath=pki.capath)


def model_blob(size: int = 300_000, seed: int = 0) -> bytearray:
    rng = np.random.default_rng(seed)
    return to_bytes({"w": rng.standard_normal(size, dtype=np.float32), "b": np.ones(3)})


@pytest.fixture(params=[True, False], ids=["memory", "disk"])
def served(request: pytest.FixtureRequest, identity: Identity,
           tmp_path: Path) -> Iterator[tuple[BlobStore, int]]:
    """A store behind a real file server on a free port."""
    store = BlobStore(tmp_path / "blobs", max_bytes=64 << 20, memory=request.param)
    config = uvicorn.Config(file_server(store, lambda: {"name": "test"}), host="127.0.0.1",
                            port=0, log_config=None, lifespan="off", access_log=False)
    config.load()
    config.ssl = server_context(identity)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield store, sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_stored_blob_is_fetched_whole(served: tuple[BlobStore, int],
                                        identity: Identity) -> None:
    store, port = served
    blob = model_blob()
    name = store.put(blob)
    assert name == digest(blob) and store.has(name)
    fetched = PeerFetcher(client_context(identity), 64 << 20).fetch("127.0.0.1", port, name)
    assert fetched == blob


def test_an_unknown_blob_is_a_404(served: tuple[BlobStore, int], identity: Identity) -> None:
    _, port = served
    fetcher = PeerFetcher(client_context(identity), 64 << 20)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher.fetch("127.0.0.1", port, "0" * 64)
    with pytest.raises(FetchError, match="HTTP 400"):
        fetcher.fetch("127.0.0.1", port, "NOT-A-HASH")


def test_the_size_limit_holds_before_anything_is_read(served: tuple[BlobStore, int],
                                                      identity: Identity) -> None:
    store, port = served
    name = store.put(model_blob())
    with pytest.raises(FetchError, match="over the 1000 byte limit"):
        PeerFetcher(client_context(identity), 1000).fetch("127.0.0.1", port, name)


def test_a_client_outside_the_pki_is_refused(served: tuple[BlobStore, int],
                                             tmp_path: Path) -> None:
    store, port = served
    name = store.put(model_blob())
    other = generate_pki(tmp_path / "other", "org-other", 2)
    stranger = Identity(cert=other.cert("sl"), key=other.key("sl"), capath=other.capath)
    with pytest.raises(FetchError):
        PeerFetcher(client_context(stranger), 64 << 20).fetch("127.0.0.1", port, name)


def test_the_memory_store_keeps_the_newest_and_drops_the_oldest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "unused", memory=True)
    names = [store.put(model_blob(1000, seed)) for seed in range(5)]
    assert [store.has(n) for n in names] == [False, False, True, True, True]
    with pytest.raises(BlobStoreError, match="not held here"):
        store.get(names[0])
    store.pin(names[2])
    store.put(model_blob(1000, 9))
    assert store.has(names[2]) and not store.has(names[3])
    assert not (tmp_path / "unused").exists()


def test_the_disk_store_drops_blobs_that_do_not_match_their_name(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    good = store.put(model_blob(1000))
    cut = tmp_path / "blobs" / f"{'a' * 64}.safetensors"
    cut.write_bytes(b"cut short by a power failure")
    (tmp_path / "blobs" / "x.123.part").write_bytes(b"half")
    reopened = BlobStore(tmp_path / "blobs")
    assert reopened.has(good) and not cut.exists()
    assert not list((tmp_path / "blobs").glob("*.part"))


def test_restarts_do_not_pile_up_blobs_beyond_the_store_limit(tmp_path: Path) -> None:
    """Each run of an SL pins what it stores; the blobs an earlier run left count too, so a
    store opened again and again holds at most `keep` blobs, the newest."""
    names = []
    for run in range(4):
        store = BlobStore(tmp_path / "blobs", keep=3)
        for size in range(3):
            names.append(store.put(model_blob(1000 + 10 * run + size)))
            os.utime(store.path(names[-1]), (1000 + len(names), 1000 + len(names)))
    reopened = BlobStore(tmp_path / "blobs", keep=3)
    assert sorted(p.stem for p in (tmp_path / "blobs").glob("*.safetensors")) == sorted(
        names[-3:])
    assert all(reopened.has(name) for name in names[-3:])


def test_a_full_store_says_why(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", max_bytes=100)
    with pytest.raises(BlobStoreError, match="over the 100 byte limit"):
        store.put(model_blob(1000))


# -- a peer that misbehaves at the HTTP level ------------------------------------------------------

def canned(identity: Identity, answer: Callable[[ssl.SSLSocket], None]) -> tuple[int, Callable]:
    """A TLS server on a free port that reads one request and answers with `answer`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    context = server_context(identity)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                tls = context.wrap_socket(conn, server_side=True)
                tls.recv(65536)
                answer(tls)
                tls.close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        listener.close()
        thread.join(timeout=10)

    return listener.getsockname()[1], close


BLOB = bytes(model_blob(1000))
NAME = digest(BLOB)


@pytest.mark.parametrize(("answer", "reason"), [
    (lambda s: s.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + BLOB), "does not say its length"),
    (lambda s: s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
     "chunked body"),
    (lambda s: s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BLOB)
                         + BLOB[:100]), "closed the connection after"),
    (lambda s: s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BLOB)
                         + BLOB[::-1]), "does not match its SHA-256"),
    (lambda s: s.sendall(b"SSH-2.0-OpenSSH\r\n\r\n"), "not an HTTP answer"),
    (lambda s: s.sendall(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000), "header is over"),
    (lambda s: None, "closed the connection before answering"),
])
def test_a_misbehaving_peer_gives_a_fetch_error(identity: Identity, answer: Callable,
                                                reason: str) -> None:
    port, close = canned(identity, answer)
    try:
        with pytest.raises(FetchError, match=reason):
            PeerFetcher(client_context(identity), 1 << 20, timeout=10).fetch(
                "127.0.0.1", port, NAME)
    finally:
        close()


def test_a_silent_peer_times_out(identity: Identity) -> None:
    port, close = canned(identity, lambda s: time.sleep(3))
    try:
        started = time.monotonic()
        with pytest.raises(FetchError):
            PeerFetcher(client_context(identity), 1 << 20, timeout=0.5).fetch(
                "127.0.0.1", port, NAME)
        assert time.monotonic() - started < 2.5
    finally:
        close()


def test_a_correct_canned_answer_is_accepted(identity: Identity) -> None:
    port, close = canned(identity, lambda s: s.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BLOB) + BLOB))
    try:
        got = PeerFetcher(client_context(identity), 1 << 20).fetch("127.0.0.1", port, NAME)
        assert bytes(got) == BLOB
    finally:
        close()


# -- a leader gathering contributions ----------------------------------------------------------

class BlobsByName:
    """A unit-test stand-in for PeerFetcher: hands out blobs it was given, by name."""

    def __init__(self, blobs: dict[str, bytearray]) -> None:
        self.blobs = blobs
        self.asked: list[str] = []

    def fetch(self, host: str, port: int, name: str) -> bytearray:
        self.asked.append(name)
        if name not in self.blobs:
            raise FetchError(f"{host}:{port}: HTTP 404")
        return self.blobs[name]


@pytest.mark.parametrize("memory", [True, False], ids=["memory", "disk"])
def test_a_leader_merges_its_own_contribution_however_many_it_fetches(
        tmp_path: Path, memory: bool) -> None:
    from swarmlearning.sl.rounds import RoundEngine, Session

    store = BlobStore(tmp_path / "blobs", keep=2, memory=memory)
    own_blob = to_bytes({"w": np.full(4, 10.0, dtype=np.float32)})
    own = store.put(own_blob)
    others = [to_bytes({"w": np.full(4, float(i), dtype=np.float32)}) for i in range(5)]
    peers = BlobsByName({digest(b): b for b in others})
    engine = RoundEngine("leader", None, store, peers, threading.Event(),  # type: ignore[arg-type]
                         ram_intensive=memory)
    checkins = [{"uid": f"peer{i}", "contribution": digest(b), "weight": 1, "host": "h",
                 "port": i} for i, b in enumerate(others)]
    checkins.append({"uid": "leader", "contribution": own, "weight": 1, "host": "h",
                     "port": 9})  # the leader checked in last
    checkins.append({"uid": "gone", "contribution": "f" * 64, "weight": 1, "host": "h",
                     "port": 99})
    rejected: dict[str, str] = {}
    merged, used = engine._merge(Session(contract="c", min_peers=2), 1, own, checkins,
                                 rejected)
    assert list(rejected) == ["gone"] and "HTTP 404" in rejected["gone"]
    # everyone fetched or held, in the order of their contributions' hashes (the merge order)
    assert used == [c["uid"] for c in sorted(checkins[:-1], key=lambda c: c["contribution"])]
    assert sorted(used) == ["leader", "peer0", "peer1", "peer2", "peer3", "peer4"]
    assert np.allclose(from_bytes(merged)["w"], (0 + 1 + 2 + 3 + 4 + 10) / 6)
    assert own not in peers.asked and store.has(own)
    assert sorted(p.name for p in (tmp_path / "blobs").glob("*")) == (
        [] if memory else [f"{own}.safetensors"])  # the fetched copies are gone again
