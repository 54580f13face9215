"""The one interface through which SWCI talks to a Swarm Network (SN) API server."""

from swci.network.client import (
    HttpSwarmNetworkClient,
    NetworkError,
    SwarmNetworkClient,
    client_for,
)

__all__ = ["HttpSwarmNetworkClient", "NetworkError", "SwarmNetworkClient", "client_for"]
