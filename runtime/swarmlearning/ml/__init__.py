"""The ML side of Swarm Learning: the local channel to the SL node and the framework-neutral
core of SwarmCallback (parameters, sync counting, adaptive sync, loopback)."""
