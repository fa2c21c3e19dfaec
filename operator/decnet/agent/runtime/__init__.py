"""decnet.agent.runtime."""
