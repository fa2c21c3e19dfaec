"""decnet.api.v1alpha1."""
