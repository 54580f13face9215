# pragma version ==0.4.3
# @title TaskRunnerBoard
# @notice Taskrunners coordinate SWOPs. The default `defaulttaskbb.taskdb.sml.hpe` exists from
#         deployment. A finalized task is assigned to an idle taskrunner with the number of peers
#         that must succeed; SWOPs enroll with the units they bring (1, or their SL/ML pairs for
#         RUN_SWARM) and report their status; the taskrunner completes when enough units succeed
#         (or, WITH ALL PEERS, enough SWOPs) and fails when one fails. TARGET adds one SWOP, or
#         lets a failed one try again. Reset returns it to idle.

interface Tasks:
    def is_finalized(name: String[160]) -> bool: view

MAX_RUNNERS: constant(uint256) = 1024
MAX_PEERS: constant(uint256) = 256

STATE_NONE: constant(uint8) = 0
STATE_IDLE: constant(uint8) = 1
STATE_RUNNING: constant(uint8) = 2
STATE_COMPLETE: constant(uint8) = 3
STATE_ERROR: constant(uint8) = 4

PEER_ENROLLED: constant(uint8) = 1
PEER_RUNNING: constant(uint8) = 2
PEER_COMPLETE: constant(uint8) = 3
PEER_ERROR: constant(uint8) = 4

struct Runner:
    name: String[160]
    task: String[160]
    state: uint8
    peers_needed: uint256
    all_peers: bool
    target: String[64]
    targeted: bool
    enrolled: uint256
    units: uint256
    done: uint256
    done_swops: uint256
    failed: uint256
    generation: uint256
    created_at: uint256
    assigned_at: uint256
    finished_at: uint256
    updated_at: uint256

struct Peer:
    swop_uid: String[64]
    name: String[160]
    status: uint8
    description: String[160]
    detail: String[1024]
    operation: uint256
    units: uint256
    updated_at: uint256

event RunnerChanged:
    key: indexed(bytes32)
    name: String[160]
    state: uint8

event PeerChanged:
    key: indexed(bytes32)
    index: uint256
    status: uint8

tasks: public(address)
runners: HashMap[bytes32, Runner]
keys: DynArray[bytes32, MAX_RUNNERS]
# runner key -> generation -> peer index -> peer; and swop uid key -> index + 1
peers: HashMap[bytes32, HashMap[uint256, HashMap[uint256, Peer]]]
peer_slot: HashMap[bytes32, HashMap[uint256, HashMap[bytes32, uint256]]]
# runner key -> generation -> swop uid key -> named by TARGET
invited: HashMap[bytes32, HashMap[uint256, HashMap[bytes32, bool]]]
operations: uint256


@deploy
def __init__(tasks: address):
    self.tasks = tasks
    self._create("defaulttaskbb.taskdb.sml.hpe", block.timestamp)


@internal
def _create(name: String[160], ts: uint256):
    assert len(name) > 0, "taskrunner name is empty"
    key: bytes32 = keccak256(name)
    assert self.runners[key].state == STATE_NONE, "taskrunner already exists"
    runner: Runner = empty(Runner)
    runner.name = name
    runner.state = STATE_IDLE
    runner.created_at = ts
    runner.updated_at = ts
    self.runners[key] = runner
    self.keys.append(key)
    log RunnerChanged(key=key, name=name, state=STATE_IDLE)


@internal
def _existing(name: String[160]) -> bytes32:
    key: bytes32 = keccak256(name)
    assert self.runners[key].state != STATE_NONE, "taskrunner does not exist"
    return key


@external
def create(name: String[160], ts: uint256):
    self._create(name, ts)


@external
def assign(name: String[160], task: String[160], peers_needed: uint256, all_peers: bool,
           target: String[64], ts: uint256):
    key: bytes32 = self._existing(name)
    assert staticcall Tasks(self.tasks).is_finalized(task), "task is not finalized"
    runner: Runner = self.runners[key]
    if len(target) > 0 and (runner.state == STATE_RUNNING or runner.state == STATE_ERROR):
        assert keccak256(runner.task) == keccak256(task), "taskrunner runs another task"
        gen: uint256 = runner.generation
        slot: uint256 = self.peer_slot[key][gen][keccak256(target)]
        if slot != 0:
            # a retry: the SWOP starts over on the same task
            previous: uint8 = self.peers[key][gen][slot - 1].status
            assert previous != PEER_COMPLETE, "that SWOP already completed this task"
            if previous == PEER_ERROR:
                self.runners[key].failed -= 1
            self.peers[key][gen][slot - 1].status = PEER_ENROLLED
            self.peers[key][gen][slot - 1].description = "retry assigned"
            self.peers[key][gen][slot - 1].detail = ""
            self.peers[key][gen][slot - 1].updated_at = ts
            log PeerChanged(key=key, index=slot - 1, status=PEER_ENROLLED)
            if self.runners[key].failed == 0:
                self.runners[key].state = STATE_RUNNING
                self.runners[key].finished_at = 0
        else:
            # one more SWOP joins the running task
            assert runner.state == STATE_RUNNING, "taskrunner has failed; reset it first"
            self.runners[key].peers_needed += peers_needed
            self.runners[key].target = target
            self.invited[key][gen][keccak256(target)] = True
        self.runners[key].updated_at = ts
        log RunnerChanged(key=key, name=name, state=self.runners[key].state)
        return
    assert runner.state == STATE_IDLE, "taskrunner is busy; reset it first"
    assert all_peers or peers_needed > 0, "peers needed must be more than 0"
    runner.task = task
    runner.state = STATE_RUNNING
    runner.peers_needed = peers_needed
    runner.all_peers = all_peers
    runner.target = target
    runner.targeted = len(target) > 0
    runner.enrolled = 0
    runner.units = 0
    runner.done = 0
    runner.done_swops = 0
    runner.failed = 0
    runner.assigned_at = ts
    runner.finished_at = 0
    runner.updated_at = ts
    self.runners[key] = runner
    if len(target) > 0:
        self.invited[key][runner.generation][keccak256(target)] = True
    log RunnerChanged(key=key, name=name, state=STATE_RUNNING)


@external
def enroll(name: String[160], swop_uid: String[64], group: String[160], units: uint256,
           ts: uint256) -> uint256:
    key: bytes32 = self._existing(name)
    runner: Runner = self.runners[key]
    assert runner.state == STATE_RUNNING, "taskrunner has no running task"
    assert units > 0, "a SWOP brings at least one unit"
    gen: uint256 = runner.generation
    swop: bytes32 = keccak256(swop_uid)
    slot: uint256 = self.peer_slot[key][gen][swop]
    self.operations += 1
    if slot == 0:
        assert runner.enrolled < MAX_PEERS, "taskrunner is full"
        invited: bool = self.invited[key][gen][swop]
        if runner.targeted:
            assert invited, "taskrunner is targeted at another SWOP"
        if invited:
            # TARGET counted the SWOP as one peer; its other units join the quorum (WITH ALL
            # PEERS counts SWOPs, not units)
            if not runner.all_peers:
                self.runners[key].peers_needed += units - 1
        elif not runner.all_peers:
            assert runner.units < runner.peers_needed, "taskrunner has all the peers it needs"
        slot = runner.enrolled + 1
        self.peer_slot[key][gen][swop] = slot
        self.runners[key].enrolled = slot
        self.runners[key].units += units
    else:
        previous: uint8 = self.peers[key][gen][slot - 1].status
        assert previous != PEER_COMPLETE, "that SWOP already completed this task"
        assert previous != PEER_ERROR, "that SWOP failed; ASSIGN TASK ... TARGET it to retry"
        # a SWOP enrolling again (after a restart or a retry) may bring other units
        self.runners[key].units = self.runners[key].units + units - \
            self.peers[key][gen][slot - 1].units
    self.peers[key][gen][slot - 1] = Peer(swop_uid=swop_uid, name=group, status=PEER_ENROLLED,
                                          description="", detail="",
                                          operation=self.operations, units=units,
                                          updated_at=ts)
    self.runners[key].updated_at = ts
    log PeerChanged(key=key, index=slot - 1, status=PEER_ENROLLED)
    return slot - 1


@external
def report(name: String[160], swop_uid: String[64], status: uint8, description: String[160],
           detail: String[1024], ts: uint256):
    key: bytes32 = self._existing(name)
    gen: uint256 = self.runners[key].generation
    slot: uint256 = self.peer_slot[key][gen][keccak256(swop_uid)]
    assert slot != 0, "SWOP is not enrolled on this taskrunner"
    assert status >= PEER_RUNNING and status <= PEER_ERROR, "unknown peer status"
    previous: uint8 = self.peers[key][gen][slot - 1].status
    if previous == PEER_COMPLETE or previous == PEER_ERROR:
        return
    self.peers[key][gen][slot - 1].status = status
    self.peers[key][gen][slot - 1].description = description
    self.peers[key][gen][slot - 1].detail = detail
    self.peers[key][gen][slot - 1].updated_at = ts
    log PeerChanged(key=key, index=slot - 1, status=status)
    if status == PEER_COMPLETE:
        # a SWOP's success counts even while another one's failure holds the task, so that a
        # retried SWOP (TARGET) can still complete it
        self.runners[key].done += self.peers[key][gen][slot - 1].units
        self.runners[key].done_swops += 1
    elif status == PEER_ERROR:
        self.runners[key].failed += 1
    if self.runners[key].state != STATE_RUNNING:
        return
    if status == PEER_COMPLETE:
        finished: bool = False
        if self.runners[key].all_peers:
            finished = self.runners[key].done_swops >= self.runners[key].peers_needed
        else:
            finished = self.runners[key].done >= self.runners[key].peers_needed
        if finished:
            self.runners[key].state = STATE_COMPLETE
            self.runners[key].finished_at = ts
    elif status == PEER_ERROR:
        self.runners[key].state = STATE_ERROR
        self.runners[key].finished_at = ts
    self.runners[key].updated_at = ts
    log RunnerChanged(key=key, name=name, state=self.runners[key].state)


@external
def reset(name: String[160], ts: uint256):
    key: bytes32 = self._existing(name)
    runner: Runner = self.runners[key]
    runner.task = ""
    runner.state = STATE_IDLE
    runner.peers_needed = 0
    runner.all_peers = False
    runner.target = ""
    runner.targeted = False
    runner.enrolled = 0
    runner.units = 0
    runner.done = 0
    runner.done_swops = 0
    runner.failed = 0
    runner.generation += 1
    runner.assigned_at = 0
    runner.finished_at = 0
    runner.updated_at = ts
    self.runners[key] = runner
    log RunnerChanged(key=key, name=name, state=STATE_IDLE)


@view
@external
def runner_count() -> uint256:
    return len(self.keys)


@view
@external
def key_at(index: uint256) -> bytes32:
    return self.keys[index]


@view
@external
def runner(key: bytes32) -> Runner:
    return self.runners[key]


@view
@external
def peer(key: bytes32, index: uint256) -> Peer:
    return self.peers[key][self.runners[key].generation][index]
