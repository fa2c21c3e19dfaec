"""decnet.cli."""
