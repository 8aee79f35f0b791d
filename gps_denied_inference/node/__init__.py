"""The flight node: lifecycle node, per-model workers, parameters and diagnostics."""
