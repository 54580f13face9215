"""An SL whose data directory fills up: a real 48 KB tmpfs mounted over it (root
only; skipped elsewhere), the disk blob store (SL_RAM_INTENSIVE=False) and the digits program.
The SL says where and why it cannot store the weights, with no traceback; its ML program gets
that reason; nothing it stored is corrupt; the two other peers (minPeers 2) finish."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.training_swarm import Swarm, peer, result, stop_all, swarm_fixture

pytest.importorskip("torch")
pytest.importorskip("sklearn")


swarm = swarm_fixture("disk")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 KB tmpfs: less than one model of the digits program (69 KB), so the first weights
    the SL stores fill it, whenever that happens."""
    mount = tmp_path / "sl3"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_data_directory_is_a_clear_error_not_corruption(swarm: Swarm, tmp_path: Path,
                                                               small_disk: Path) -> None:
    contract = swarm.new_contract()
    peers = [peer(swarm, tmp_path, index, contract, epochs=4, min_peers=2)
             for index in (1, 2)]
    cramped = peer(swarm, tmp_path, 3, contract, epochs=4, min_peers=2,
                   env={"SL_RAM_INTENSIVE": "False"})
    try:
        for sl in [*peers, cramped]:
            sl.start()
        code = cramped.wait_exit(timeout=240)
        for sl in peers:
            assert sl.wait_exit(timeout=240) == 0, sl.log()[-4000:]
    finally:
        stop_all([*peers, cramped])
    log = cramped.log()
    assert code != 0, log[-4000:]
    said = [line for line in log.splitlines() if "no space left on the device" in line]
    assert said and f"blob in {small_disk / 'blobs'}" in said[0], log[-4000:]
    assert "SL internal error" not in log
    # the ML program got the same reason (its own traceback is the user's program's)
    assert any("cannot store a" in line and "ChannelError" in line for line in
               log.splitlines()), log[-4000:]
    blobs = small_disk / "blobs"
    stored = list(blobs.iterdir())
    assert not [path for path in stored if not path.name.endswith(".safetensors")], stored
    for path in stored:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.split(".")[0]
    for index in (1, 2):
        assert result(tmp_path, index)["accuracy"] > 0.5
    print(f"MEASURED full SL data directory (48 KB tmpfs): the SL stopped with exit {code} "
          f"and '{said[0].split(' : ', 2)[-1][:120]}'; {len(stored)} intact blob(s) left; "
          "the two other peers finished")
