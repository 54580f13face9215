# pragma version ==0.4.3
# @title TrainingBoard
# @notice Training contracts and the storage of their sync rounds. The default contract
#         `defaultbb.cqdb.sml.hpe` exists from deployment; contracts are never deleted, and a
#         completed one can be reset to run again. Per round: the check-ins (peer, hash of its
#         contribution, weight), the leader, the merged model's hash and its participants. Each
#         SN writes the check-ins of all its SLs in one call; a round number makes every write
#         idempotent. A check-in's flags say whether the peer may lead (bit 0) and whether its ML
#         has finished training (bit 1); the merge of a round in which every peer has finished
#         completes the contract. The leader also records the contributions it left out, with
#         the reason; per peer, the contract keeps a count and the latest (for PERFDATA).

MAX_CONTRACTS: constant(uint256) = 1024
MAX_PEERS: constant(uint256) = 256
MAX_BATCH: constant(uint256) = 64
MAX_REASON: constant(uint256) = 200

STATE_NONE: constant(uint8) = 0
STATE_INITIALIZED: constant(uint8) = 1
STATE_RUNNING: constant(uint8) = 2
STATE_COMPLETED: constant(uint8) = 3

struct Training:
    name: String[160]
    state: uint8
    round: uint256
    resets: uint256
    peers: uint256
    created_at: uint256
    updated_at: uint256

struct Checkin:
    peer: bytes32
    contribution: bytes32
    weight: uint256
    flags: uint256

struct Merge:
    leader: bytes32
    merged: bytes32
    participants: DynArray[bytes32, MAX_PEERS]
    merged_at: uint256

struct Rejection:
    peer: bytes32
    reason: String[MAX_REASON]

struct Rejections:
    peer: bytes32
    count: uint256
    round: uint256
    reason: String[MAX_REASON]

struct Progress:
    peer: bytes32
    uid: String[64]
    leader: bool
    loss: int256
    metric: int256
    total_epochs: uint256
    completed_epochs: uint256
    updated_at: uint256

# The events carry what changed, whole, so that an SN's cache follows the chain from its logs
# without reading the contract again: a contract's row after every change to it, a batch of
# check-ins, a merge record.
event TrainingChanged:
    key: indexed(bytes32)
    training: Training

event CheckedIn:
    key: indexed(bytes32)
    generation: uint256
    round: uint256
    entries: DynArray[Checkin, MAX_BATCH]

event Merged:
    key: indexed(bytes32)
    generation: uint256
    round: uint256
    merge: Merge

event Rejected:
    key: indexed(bytes32)
    generation: uint256
    round: uint256
    entries: DynArray[Rejection, MAX_BATCH]

event ProgressReported:
    key: indexed(bytes32)
    peers: DynArray[bytes32, MAX_BATCH]

trainings: HashMap[bytes32, Training]
keys: DynArray[bytes32, MAX_CONTRACTS]
# contract key -> reset generation -> round -> checked-in peers and their check-ins
checkin_peers: HashMap[bytes32, HashMap[uint256, HashMap[uint256, DynArray[bytes32, MAX_PEERS]]]]
checkins: HashMap[bytes32, HashMap[uint256, HashMap[uint256, HashMap[bytes32, Checkin]]]]
merges: HashMap[bytes32, HashMap[uint256, HashMap[uint256, Merge]]]
# contract key -> reset generation -> peers with progress, and their progress
progress_peers: HashMap[bytes32, HashMap[uint256, DynArray[bytes32, MAX_PEERS]]]
progress: HashMap[bytes32, HashMap[uint256, HashMap[bytes32, Progress]]]
# contract key -> reset generation -> peers with rejected contributions, and their tallies
rejected_peers: HashMap[bytes32, HashMap[uint256, DynArray[bytes32, MAX_PEERS]]]
rejections: HashMap[bytes32, HashMap[uint256, HashMap[bytes32, Rejections]]]


@deploy
def __init__():
    self._create("defaultbb.cqdb.sml.hpe", block.timestamp)


@internal
def _create(name: String[160], ts: uint256):
    assert len(name) > 0, "contract name is empty"
    key: bytes32 = keccak256(name)
    assert self.trainings[key].state == STATE_NONE, "contract already exists"
    self.trainings[key] = Training(name=name, state=STATE_INITIALIZED, round=0, resets=0,
                                   peers=0, created_at=ts, updated_at=ts)
    self.keys.append(key)
    log TrainingChanged(key=key, training=self.trainings[key])


@internal
def _existing(name: String[160]) -> bytes32:
    key: bytes32 = keccak256(name)
    assert self.trainings[key].state != STATE_NONE, "contract does not exist"
    return key


@external
def create(name: String[160], ts: uint256):
    self._create(name, ts)


@external
def reset(name: String[160], ts: uint256):
    key: bytes32 = self._existing(name)
    assert self.trainings[key].state == STATE_COMPLETED, "only a completed contract can be reset"
    self.trainings[key].state = STATE_INITIALIZED
    self.trainings[key].round = 0
    self.trainings[key].peers = 0
    self.trainings[key].resets += 1
    self.trainings[key].updated_at = ts
    log TrainingChanged(key=key, training=self.trainings[key])


@external
def checkin(name: String[160], round: uint256, entries: DynArray[Checkin, MAX_BATCH],
            ts: uint256):
    key: bytes32 = self._existing(name)
    assert self.trainings[key].state != STATE_COMPLETED, "contract is completed"
    assert round == self.trainings[key].round, "check-in is not for the current round"
    gen: uint256 = self.trainings[key].resets
    for entry: Checkin in entries:
        if self.checkins[key][gen][round][entry.peer].peer == empty(bytes32):
            self.checkin_peers[key][gen][round].append(entry.peer)
        self.checkins[key][gen][round][entry.peer] = entry
    if self.trainings[key].state == STATE_INITIALIZED:
        self.trainings[key].state = STATE_RUNNING
    self.trainings[key].updated_at = ts
    log CheckedIn(key=key, generation=gen, round=round, entries=entries)
    log TrainingChanged(key=key, training=self.trainings[key])


@external
def record_merge(name: String[160], round: uint256, leader: bytes32, merged: bytes32,
                 participants: DynArray[bytes32, MAX_PEERS],
                 rejected: DynArray[Rejection, MAX_BATCH], final: bool, ts: uint256):
    key: bytes32 = self._existing(name)
    assert self.trainings[key].state != STATE_COMPLETED, "contract is completed"
    assert round == self.trainings[key].round, "merge is not for the current round"
    gen: uint256 = self.trainings[key].resets
    self.merges[key][gen][round] = Merge(leader=leader, merged=merged,
                                         participants=participants, merged_at=ts)
    self.trainings[key].round = round + 1
    if len(participants) > self.trainings[key].peers:
        self.trainings[key].peers = len(participants)
    if final:
        self.trainings[key].state = STATE_COMPLETED
    self.trainings[key].updated_at = ts
    for entry: Rejection in rejected:
        if self.rejections[key][gen][entry.peer].peer == empty(bytes32):
            self.rejected_peers[key][gen].append(entry.peer)
        self.rejections[key][gen][entry.peer] = Rejections(
            peer=entry.peer, count=self.rejections[key][gen][entry.peer].count + 1, round=round,
            reason=entry.reason)
    log Merged(key=key, generation=gen, round=round, merge=self.merges[key][gen][round])
    if len(rejected) > 0:
        log Rejected(key=key, generation=gen, round=round, entries=rejected)
    log TrainingChanged(key=key, training=self.trainings[key])


@external
def report_progress(name: String[160], entries: DynArray[Progress, MAX_BATCH]):
    key: bytes32 = self._existing(name)
    gen: uint256 = self.trainings[key].resets
    peers: DynArray[bytes32, MAX_BATCH] = []
    for entry: Progress in entries:
        if self.progress[key][gen][entry.peer].peer == empty(bytes32):
            self.progress_peers[key][gen].append(entry.peer)
        self.progress[key][gen][entry.peer] = entry
        peers.append(entry.peer)
    log ProgressReported(key=key, peers=peers)


@external
def complete(name: String[160], ts: uint256):
    key: bytes32 = self._existing(name)
    if self.trainings[key].state != STATE_COMPLETED:
        self.trainings[key].state = STATE_COMPLETED
        self.trainings[key].updated_at = ts
        log TrainingChanged(key=key, training=self.trainings[key])


@view
@external
def contract_count() -> uint256:
    return len(self.keys)


@view
@external
def key_at(index: uint256) -> bytes32:
    return self.keys[index]


@view
@external
def training(key: bytes32) -> Training:
    return self.trainings[key]


@view
@external
def round_checkins(key: bytes32, round: uint256) -> DynArray[Checkin, MAX_PEERS]:
    gen: uint256 = self.trainings[key].resets
    result: DynArray[Checkin, MAX_PEERS] = []
    for peer: bytes32 in self.checkin_peers[key][gen][round]:
        result.append(self.checkins[key][gen][round][peer])
    return result


@view
@external
def round_merge(key: bytes32, round: uint256) -> Merge:
    return self.merges[key][self.trainings[key].resets][round]


@view
@external
def all_progress(key: bytes32) -> DynArray[Progress, MAX_PEERS]:
    gen: uint256 = self.trainings[key].resets
    result: DynArray[Progress, MAX_PEERS] = []
    for peer: bytes32 in self.progress_peers[key][gen]:
        result.append(self.progress[key][gen][peer])
    return result


@view
@external
def all_rejections(key: bytes32) -> DynArray[Rejections, MAX_PEERS]:
    gen: uint256 = self.trainings[key].resets
    result: DynArray[Rejections, MAX_PEERS] = []
    for peer: bytes32 in self.rejected_peers[key][gen]:
        result.append(self.rejections[key][gen][peer])
    return result
