"""Swarm Operator (SWOP): turns tasks assigned on the chain into builds, content and running
SL/ML pairs on this site, and reports each step back to the taskrunner."""
