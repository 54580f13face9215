"""The Swarm Learning node (SL): a peer file server of content-addressed weights, the sync
rounds coordinated through its SN, and the local channel to its ML program."""
