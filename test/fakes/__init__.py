"""Fakes of TensorRT 10.3, PyCUDA and Polygraphy that record one ordered call log.

`gpu.installed()` makes `import tensorrt`, `import pycuda.driver` and
`from polygraphy.backend.trt import ...` load the modules in this directory (and records each
import). Every public member of every fake class is checked against the same class of the
real release (api/*.json, parsed from TensorRT 10.3.0's and PyCUDA 2024.1.2's sources) by
test/runtimes/test_tensorrt_api.py, so a fake cannot drift from the API it stands for.
"""
