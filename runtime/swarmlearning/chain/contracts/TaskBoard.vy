# pragma version ==0.4.3
# @title TaskBoard
# @notice Swarm task headers and bodies. ROOTTASK exists from deployment; a task is created,
#         filled in, then finalized, after which it can neither change nor be deleted.

MAX_TASKS: constant(uint256) = 4096
MAX_BODY_LINES: constant(uint256) = 80

STATE_NONE: constant(uint8) = 0
STATE_CREATED: constant(uint8) = 1
STATE_FINALIZED: constant(uint8) = 2

struct Task:
    name: String[160]
    task_type: String[32]
    author: String[160]
    prereq: String[160]
    outcome: String[160]
    state: uint8
    lines: uint256
    created_at: uint256
    updated_at: uint256
    finalized_at: uint256

event TaskChanged:
    key: indexed(bytes32)
    name: String[160]
    state: uint8

tasks: HashMap[bytes32, Task]
body: HashMap[bytes32, HashMap[uint256, String[160]]]
listed: HashMap[bytes32, bool]
keys: DynArray[bytes32, MAX_TASKS]


@deploy
def __init__():
    root: bytes32 = keccak256("ROOTTASK")
    self.tasks[root] = Task(name="ROOTTASK", task_type="ROOTTASK", author="swarm",
                            prereq="", outcome="", state=STATE_FINALIZED, lines=0,
                            created_at=block.timestamp, updated_at=block.timestamp,
                            finalized_at=block.timestamp)
    self.listed[root] = True
    self.keys.append(root)


@internal
def _create(name: String[160], task_type: String[32], author: String[160],
            prereq: String[160], outcome: String[160], ts: uint256) -> bytes32:
    assert len(name) > 0, "task name is empty"
    key: bytes32 = keccak256(name)
    assert self.tasks[key].state == STATE_NONE, "task already exists"
    assert self.tasks[keccak256(prereq)].state != STATE_NONE, "prerequisite task does not exist"
    self.tasks[key] = Task(name=name, task_type=task_type, author=author, prereq=prereq,
                           outcome=outcome, state=STATE_CREATED, lines=0, created_at=ts,
                           updated_at=ts, finalized_at=0)
    if not self.listed[key]:
        self.listed[key] = True
        self.keys.append(key)
    return key


@internal
def _set_lines(key: bytes32, start: uint256, lines: DynArray[String[160], MAX_BODY_LINES],
               ts: uint256):
    assert self.tasks[key].state == STATE_CREATED, "task is not open for changes"
    assert start >= 1, "body lines are numbered from 1"
    last: uint256 = start + len(lines) - 1
    assert last <= MAX_BODY_LINES, "a task body holds at most 80 lines"
    for i: uint256 in range(len(lines), bound=MAX_BODY_LINES):
        self.body[key][start + i] = lines[i]
    if last > self.tasks[key].lines:
        self.tasks[key].lines = last
    self.tasks[key].updated_at = ts


@external
def create(name: String[160], task_type: String[32], author: String[160],
           prereq: String[160], outcome: String[160], ts: uint256):
    key: bytes32 = self._create(name, task_type, author, prereq, outcome, ts)
    log TaskChanged(key=key, name=name, state=STATE_CREATED)


@external
def register(name: String[160], task_type: String[32], author: String[160],
             prereq: String[160], outcome: String[160],
             lines: DynArray[String[160], MAX_BODY_LINES], ts: uint256):
    key: bytes32 = self._create(name, task_type, author, prereq, outcome, ts)
    if len(lines) > 0:
        self._set_lines(key, 1, lines, ts)
    log TaskChanged(key=key, name=name, state=STATE_CREATED)


@external
def set_lines(name: String[160], start: uint256,
              lines: DynArray[String[160], MAX_BODY_LINES], ts: uint256):
    key: bytes32 = keccak256(name)
    assert self.tasks[key].state != STATE_NONE, "task does not exist"
    self._set_lines(key, start, lines, ts)
    log TaskChanged(key=key, name=name, state=STATE_CREATED)


@external
def finalize(name: String[160], ts: uint256):
    key: bytes32 = keccak256(name)
    assert self.tasks[key].state != STATE_NONE, "task does not exist"
    assert self.tasks[key].state == STATE_CREATED, "task is already finalized"
    self.tasks[key].state = STATE_FINALIZED
    self.tasks[key].finalized_at = ts
    self.tasks[key].updated_at = ts
    log TaskChanged(key=key, name=name, state=STATE_FINALIZED)


@external
def delete(name: String[160]):
    key: bytes32 = keccak256(name)
    assert self.tasks[key].state != STATE_NONE, "task does not exist"
    assert self.tasks[key].state == STATE_CREATED, "a finalized task cannot be deleted"
    for i: uint256 in range(self.tasks[key].lines, bound=MAX_BODY_LINES):
        self.body[key][i + 1] = ""
    self.tasks[key] = empty(Task)
    log TaskChanged(key=key, name=name, state=STATE_NONE)


@view
@external
def task_count() -> uint256:
    return len(self.keys)


@view
@external
def key_at(index: uint256) -> bytes32:
    return self.keys[index]


@view
@external
def task(key: bytes32) -> Task:
    return self.tasks[key]


@view
@external
def body_lines(key: bytes32) -> DynArray[String[160], MAX_BODY_LINES]:
    result: DynArray[String[160], MAX_BODY_LINES] = []
    for i: uint256 in range(self.tasks[key].lines, bound=MAX_BODY_LINES):
        result.append(self.body[key][i + 1])
    return result


@view
@external
def is_finalized(name: String[160]) -> bool:
    return self.tasks[keccak256(name)].state == STATE_FINALIZED
