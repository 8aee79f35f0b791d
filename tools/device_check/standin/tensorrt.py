"""A TensorRT 10.3 stand-in for a GPU machine without TensorRT: the PyCUDA half runs for real.

Only what TensorrtRuntime calls exists. A "plan" is the TensorRT header (b'ftrt', version
10.3.0 at offset 24) followed by JSON naming one input and one output of the same size;
`execute_async_v3` copies the input's device buffer to the output's with a real
cuMemcpyDtoDAsync on the stream handle it is given, so H2D -> enqueue -> D2H -> sync moves
real bytes through real device memory on the runtime's own stream. Never on the drone.
"""

import ctypes
import enum
import json

import numpy as np

__version__ = '10.3.0'
HEADER_BYTES = 27
_LIBCUDA = ctypes.CDLL('libcuda.so.1')
_LIBCUDA.cuMemcpyDtoDAsync_v2.argtypes = (ctypes.c_uint64, ctypes.c_uint64, ctypes.c_size_t,
                                          ctypes.c_void_p)
_LIBCUDA.cuMemcpyDtoDAsync_v2.restype = ctypes.c_int


class DataType(enum.IntEnum):
    FLOAT = 0


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


def nptype(trt_type):
    return {DataType.FLOAT: np.float32}[trt_type]


class ILogger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4


class Logger(ILogger):
    WARNING = ILogger.Severity.WARNING

    def __init__(self, min_severity=ILogger.Severity.WARNING):
        self.min_severity = min_severity


def init_libnvinfer_plugins(logger, namespace):
    return True


def plan_bytes(tensors):
    """A stand-in plan for `tensors`: [{'name', 'mode': 'input'|'output', 'shape'}]."""
    header = bytearray(HEADER_BYTES)
    header[:4] = b'ftrt'
    header[24:27] = bytes((10, 3, 0))
    return bytes(header) + json.dumps({'tensors': tensors}).encode('utf-8')


class Runtime:
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, serialized_engine):
        data = bytes(serialized_engine)
        if data[:4] != b'ftrt':
            return None
        return ICudaEngine(json.loads(data[HEADER_BYTES:].decode('utf-8'))['tensors'])


class ICudaEngine:
    def __init__(self, tensors):
        self._tensors = {t['name']: t for t in tensors}
        self._names = [t['name'] for t in tensors]

    @property
    def num_io_tensors(self):
        return len(self._names)

    @property
    def device_memory_size_v2(self):
        return 0

    def get_tensor_name(self, index):
        return self._names[index]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if self._tensors[name]['mode'] == 'input' \
            else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return DataType.FLOAT

    def get_tensor_shape(self, name):
        return tuple(self._tensors[name]['shape'])

    def create_execution_context(self):
        return IExecutionContext(self)


class IExecutionContext:
    def __init__(self, engine):
        self._engine = engine
        self._addresses = {}

    def set_tensor_address(self, name, memory):
        self._addresses[name] = int(memory)
        return True

    def set_input_shape(self, name, shape):
        return tuple(shape) == self._engine.get_tensor_shape(name)

    def get_tensor_shape(self, name):
        return self._engine.get_tensor_shape(name)

    def infer_shapes(self):
        return []

    def execute_async_v3(self, stream_handle):
        tensors = self._engine._tensors.values()
        source = next(t for t in tensors if t['mode'] == 'input')
        target = next(t for t in tensors if t['mode'] == 'output')
        nbytes = int(np.prod(source['shape'])) * 4
        status = _LIBCUDA.cuMemcpyDtoDAsync_v2(self._addresses[target['name']],
                                               self._addresses[source['name']], nbytes,
                                               ctypes.c_void_p(stream_handle))
        return status == 0
