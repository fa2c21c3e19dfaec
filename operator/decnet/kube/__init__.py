"""decnet.kube."""
