"""Pre-flight compilation: ONNX -> sealed TensorRT engine, build config, INT8 calibration."""
