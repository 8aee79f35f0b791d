"""Sealed artifacts: the engine gate, the sidecars that seal a model, and its manifest."""
