"""The shell that runs resources: one module per type, a registry, and the host."""
