"""Inference strategies (TensorRT, ONNX Runtime) behind one protocol, and what they share."""
