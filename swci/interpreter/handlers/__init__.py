"""Command handlers, one module per area; each registers itself in swci.registry."""
