"""Fakes of TensorRT 10.3, PyCUDA and Polygraphy that record one ordered call log.

`gpu.installed()` makes `import tensorrt`, `import pycuda.driver` and
`from polygraphy.backend.trt import ...` load the modules in this directory (and records each
import). The public names these modules define are checked against the real releases by
test/test_tensorrt_api_names.py, so a fake cannot drift from the API it stands for.
"""
