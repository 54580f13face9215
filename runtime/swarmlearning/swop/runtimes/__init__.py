"""The SWOP runtimes, the two ways a SWOP carries out its tasks: `process` (the default: local
processes in per-task sandboxes) and `docker` (images, volumes and containers on a Docker
engine, with its parts in the `docker_*` modules). `swop.node.choose_runtime` picks one."""
