"""decnet.controller."""
