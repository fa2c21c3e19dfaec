"""decnet.agent."""
