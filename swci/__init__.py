"""swci: the Swarm Learning command interface (SWCI) and its language."""

__version__ = "0.1.0"
