"""SWCI web mode: the interpreter behind HTTPS with mutual TLS (HPE's /exec and /uploadTaskDef)."""
