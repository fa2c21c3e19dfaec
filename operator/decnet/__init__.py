"""decnet-operator: a Kubernetes-native deception network."""

__version__ = "0.1.0"
