"""decnet.api."""
