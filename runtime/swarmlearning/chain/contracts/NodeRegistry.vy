# pragma version ==0.4.3
# @title NodeRegistry
# @notice Who is in the swarm: SN, SL and SWOP nodes with their address, parent SN, owner and
#         last sign of life. Each SN reports the liveness of all its nodes in one batched call.
#         The owner is the identity (a digest of the certificate's issuer and subject names)
#         that first registered a UID; nobody else can register that UID again.
#         It is also the swarm's directory: the deployer records the other three contracts'
#         addresses here once, so that an SN given only this address finds them all.

MAX_NODES: constant(uint256) = 4096
MAX_BATCH: constant(uint256) = 128

struct Node:
    uid: String[64]
    node_type: String[16]
    host: String[160]
    port: uint256
    name: String[160]
    parent: String[64]
    owner: bytes32
    registered_at: uint256
    alive_at: uint256
    active: bool

event NodeChanged:
    key: indexed(bytes32)
    uid: String[64]
    active: bool

event NodesAlive:
    keys: DynArray[bytes32, MAX_BATCH]
    ts: uint256

nodes: HashMap[bytes32, Node]
keys: DynArray[bytes32, MAX_NODES]
deployer: address
tasks_board: public(address)
runner_board: public(address)
training_board: public(address)


@deploy
def __init__():
    self.deployer = msg.sender


@external
def set_directory(tasks: address, runners: address, trainings: address):
    assert msg.sender == self.deployer, "only the deployer sets the directory"
    assert self.tasks_board == empty(address), "the directory is set"
    self.tasks_board = tasks
    self.runner_board = runners
    self.training_board = trainings


@external
def register(uid: String[64], node_type: String[16], host: String[160], port: uint256,
             name: String[160], parent: String[64], owner: bytes32, ts: uint256):
    assert len(uid) > 0, "node uid is empty"
    assert owner != empty(bytes32), "node owner is empty"
    key: bytes32 = keccak256(uid)
    if self.nodes[key].registered_at == 0:
        self.keys.append(key)
    else:
        assert self.nodes[key].owner == owner, "node uid is registered to another identity"
    self.nodes[key] = Node(uid=uid, node_type=node_type, host=host, port=port, name=name,
                           parent=parent, owner=owner, registered_at=max(ts, 1), alive_at=ts,
                           active=True)
    log NodeChanged(key=key, uid=uid, active=True)


@external
def alive(keys: DynArray[bytes32, MAX_BATCH], ts: uint256):
    for key: bytes32 in keys:
        if self.nodes[key].registered_at != 0 and self.nodes[key].alive_at < ts:
            self.nodes[key].alive_at = ts
            self.nodes[key].active = True
    log NodesAlive(keys=keys, ts=ts)


@external
def deregister(uid: String[64], ts: uint256):
    key: bytes32 = keccak256(uid)
    assert self.nodes[key].registered_at != 0, "node is not registered"
    self.nodes[key].active = False
    self.nodes[key].alive_at = ts
    log NodeChanged(key=key, uid=uid, active=False)


@view
@external
def node_count() -> uint256:
    return len(self.keys)


@view
@external
def key_at(index: uint256) -> bytes32:
    return self.keys[index]


@view
@external
def node(key: bytes32) -> Node:
    return self.nodes[key]
