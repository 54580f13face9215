"""swarmlearning: the Swarm Learning node runtime (SN, SL, SWOP, chain, merge, identity,
SwarmCallback). The packages arrive with the Swarm Network, Swarm Learning and Swarm Operator
issues; HPE's import paths (swarmlearning.tf, swarmlearning.pyt, swarmlearning.swci) are kept."""

__version__ = "0.1.0"
