"""SwarmView on a chain whose blocks can be replaced (an external network): when the last block
it took in is no longer on the chain, or the chain is shorter than it, it reads everything
again; on the embedded chain it never asks for block hashes. The ledger here is a stand-in
that holds no contracts (a unit test)."""

from __future__ import annotations

from swarmlearning.sn.view import SwarmView


class Chain:
    """Block numbers and hashes only; no contract objects."""

    def __init__(self, external: bool) -> None:
        self.reorgs_possible = external
        self.hashes = [bytes([n]) * 32 for n in range(6)]
        self.hash_reads = 0
        self.key_reads = 0

    def block_number(self) -> int:
        return len(self.hashes) - 1

    def block_hash(self, number: int) -> bytes | None:
        self.hash_reads += 1
        return self.hashes[number] if number < len(self.hashes) else None

    def keys(self, kind: str) -> list[bytes]:
        self.key_reads += 1
        return []

    def changes(self, start: int, stop: int) -> list:
        return []


def loads(chain: Chain) -> int:
    return chain.key_reads // 4  # load() lists the four kinds once


def test_a_replaced_block_makes_the_view_read_everything_again() -> None:
    chain = Chain(external=True)
    view = SwarmView(chain)  # type: ignore[arg-type]
    view.load()
    view.sync()
    assert loads(chain) == 1 and view.block == 5
    chain.hashes.append(b"\x06" * 32)
    view.sync()
    assert loads(chain) == 1 and view.block == 6  # a new block on top: followed, not reloaded
    chain.hashes[6] = b"\xee" * 32  # block 6 replaced by another
    view.sync()
    assert loads(chain) == 2 and view.block == 6
    del chain.hashes[5:]  # the chain went back to block 4
    view.sync()
    assert loads(chain) == 3 and view.block == 4


def test_the_embedded_chain_is_never_asked_for_block_hashes() -> None:
    chain = Chain(external=False)
    view = SwarmView(chain)  # type: ignore[arg-type]
    view.load()
    chain.hashes.append(b"\x06" * 32)
    view.sync()
    assert chain.hash_reads == 0 and loads(chain) == 1 and view.block == 6
