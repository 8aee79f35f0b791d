"""`make bench`: the node against raw ONNX Runtime and bare transport (not flight code)."""
