"""Fake tensorrt (TensorRT 10.3 Python API), enough to build, load and run one kind of model.

The fake "model" doubles its first input into every output, so a test can check that data
really went H2D, through the bound addresses and back D2H. A serialized fake plan starts
with a real plan header (magic, version 10.3.0 at offset 24) followed by JSON describing the
engine. Every public member of every class here must exist on the same class of the real
TensorRT 10.3 Python API, with the same argument names where the test knows them
(test/runtimes/test_tensorrt_api.py); helpers are private.
"""

import array
import enum
import json
import time
import warnings
import zlib

import numpy as np

from fakes import gpu as _gpu

__version__ = '10.3.0'

_VERSION = (10, 3, 0)
_DEVICE_MEMORY = 65536
_NP = {'FLOAT': np.float32, 'HALF': np.float16, 'INT8': np.int8, 'INT32': np.int32,
       'INT64': np.int64, 'BOOL': np.bool_, 'UINT8': np.uint8}


class _Bound(type):
    """pybind11's rule for Python subclasses of a bound class: the base __init__ must run."""

    def __call__(cls, *args, **kwargs):
        instance = super().__call__(*args, **kwargs)
        if not instance.__dict__.get('_base_initialised', False):
            raise TypeError(f'{cls.__name__}.__init__() must be called when overriding '
                            '__init__')
        return instance


def _deprecated(what):
    """What the real bindings do on every call of a deprecated member (utils.cpp)."""
    warnings.warn(f'Use {what} instead.', DeprecationWarning, stacklevel=3)


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    INT8 = 1
    TF32 = 7


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class ExecutionContextAllocationStrategy(enum.IntEnum):
    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


def nptype(trt_type):
    name = DataType(trt_type).name
    if name not in _NP:
        raise TypeError('Could not resolve TensorRT datatype to an equivalent numpy datatype.')
    return _NP[name]


def init_libnvinfer_plugins(logger, namespace):
    _gpu.active().record('trt.init_libnvinfer_plugins', namespace)
    if not isinstance(logger, ILogger):
        raise TypeError('init_libnvinfer_plugins(): incompatible function arguments')
    _gpu.active().plugins_registered = True
    return True


def _data_type(dtype_name):
    for name, numpy_type in _NP.items():
        if np.dtype(numpy_type).name == dtype_name:
            return DataType[name]
    raise TypeError(f'no TensorRT type for {dtype_name}')


class ILogger(metaclass=_Bound):
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self):
        self._base_initialised = True

    def log(self, severity, msg):
        raise NotImplementedError


class Logger(ILogger):
    INTERNAL_ERROR = ILogger.Severity.INTERNAL_ERROR
    ERROR = ILogger.Severity.ERROR
    WARNING = ILogger.Severity.WARNING
    INFO = ILogger.Severity.INFO
    VERBOSE = ILogger.Severity.VERBOSE

    def __init__(self, min_severity=ILogger.Severity.WARNING):
        super().__init__()
        self._min_severity = min_severity

    def log(self, severity, msg):
        _gpu.active().record('Logger.log', int(severity), msg)


class ITensor:
    def __init__(self, name, dtype, shape):
        self.name = name
        self.dtype = dtype
        self.shape = shape


class INetworkDefinition:
    def __init__(self):
        self._inputs = []
        self._outputs = []
        self._plugins = []

    @property
    def num_inputs(self):
        return len(self._inputs)

    def get_input(self, index):
        return self._inputs[index]


class ParserError:
    def __init__(self, text):
        self._text = text

    def __str__(self):
        return self._text


class OnnxParser:
    def __init__(self, network, logger):
        _gpu.active().record('trt.OnnxParser')
        self._network = network
        self._errors = []

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]

    def parse_from_file(self, model):
        if _gpu.active().record('OnnxParser.parse_from_file', model) is _gpu.SOFT:
            self._errors = [ParserError('In node 0 (importConv): UNSUPPORTED_NODE: injected')]
            return False
        import onnx
        from onnx import helper

        graph = onnx.load(model, load_external_data=False).graph
        initializers = {t.name for t in graph.initializer}
        plugins = sorted({n.op_type for n in graph.node if n.op_type.endswith('_TRT')})
        if plugins and not _gpu.active().plugins_registered:
            self._errors = [ParserError(f'In node 0: UNSUPPORTED_NODE: no importer for '
                                        f'{plugins[0]} (plugin not registered)')]
            return False
        self._network._plugins = plugins

        def tensor(value):
            tensor_type = value.type.tensor_type
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
            shape = tuple(int(d.dim_value) if d.HasField('dim_value') and d.dim_value > 0
                          else -1 for d in tensor_type.shape.dim)
            return ITensor(value.name, _data_type(dtype), shape)

        self._network._inputs = [tensor(v) for v in graph.input if v.name not in initializers]
        self._network._outputs = [tensor(v) for v in graph.output]
        return True


class IOptimizationProfile:
    def __init__(self):
        self._shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 - TensorRT's parameter names
        _gpu.active().record('IOptimizationProfile.set_shape', input, tuple(min), tuple(opt),
                             tuple(max))
        self._shapes[input] = (tuple(min), tuple(opt), tuple(max))


class ITimingCache:
    def __init__(self, data):
        self._data = bytes(data)

    def serialize(self):
        return IHostMemory(self._data)


class IHostMemory(array.array):
    """A buffer (memoryview, bytes() and file writes work), not bytes: no len, no slicing."""

    def __new__(cls, data):
        return super().__new__(cls, 'B', bytes(data))

    @property
    def nbytes(self):
        return memoryview(self).nbytes

    @property
    def dtype(self):
        return DataType.UINT8

    def __len__(self):
        raise TypeError("object of type 'tensorrt.IHostMemory' has no len()")

    def __getitem__(self, index):
        raise TypeError("'tensorrt.IHostMemory' object is not subscriptable")

    def __iter__(self):
        raise TypeError("'tensorrt.IHostMemory' object is not iterable")

    def __add__(self, other):
        raise TypeError('unsupported operand type(s) for +: tensorrt.IHostMemory')

    def __eq__(self, other):
        return NotImplemented

    __hash__ = None


class IBuilderConfig:
    def __init__(self):
        self._flags = {BuilderFlag.TF32}  # TensorRT's default: TF32 on
        self._pools = {}
        self._profiles = []
        self._calibration_profile = None
        self._timing_cache = None
        self._int8_calibrator = None
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY

    @property
    def int8_calibrator(self):
        _deprecated('Deprecated in TensorRT 10.1. Superseded by explicit quantization.')
        return self._int8_calibrator

    @int8_calibrator.setter
    def int8_calibrator(self, calibrator):
        _deprecated('Deprecated in TensorRT 10.1. Superseded by explicit quantization.')
        if calibrator is not None and not isinstance(calibrator, IInt8Calibrator):
            raise TypeError('int8_calibrator: incompatible function arguments')
        self._int8_calibrator = calibrator

    def clear_flag(self, flag):
        _gpu.active().record('IBuilderConfig.clear_flag', BuilderFlag(flag).name)
        self._flags.discard(BuilderFlag(flag))

    def get_flag(self, flag):
        return BuilderFlag(flag) in self._flags

    def set_memory_pool_limit(self, pool, pool_size):
        _gpu.active().record('IBuilderConfig.set_memory_pool_limit', pool, pool_size)
        self._pools[pool] = pool_size

    def set_flag(self, flag):
        _gpu.active().record('IBuilderConfig.set_flag', BuilderFlag(flag).name)
        self._flags.add(BuilderFlag(flag))

    def add_optimization_profile(self, profile):
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def set_calibration_profile(self, profile):
        _deprecated('Deprecated in TensorRT 10.1. Superseded by explicit quantization.')
        self._calibration_profile = profile
        return True

    def create_timing_cache(self, serialized_timing_cache):
        data = bytes(serialized_timing_cache)
        if data and not data.startswith(b'fake-timing-cache'):
            return None
        return ITimingCache(data or b'fake-timing-cache\n')

    def set_timing_cache(self, cache, ignore_mismatch):
        self._timing_cache = cache
        return True


class Builder:
    def __init__(self, logger):
        _gpu.active().record('trt.Builder')
        self._logger = logger

    def create_network(self, flags=0):
        return INetworkDefinition()

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def build_serialized_network(self, network, config):
        outcome = _gpu.active().record('Builder.build_serialized_network')
        _gpu.active().require_context('buildSerializedNetwork')
        self._logger.log(Logger.INFO, 'fake builder: building')
        if _gpu.active().build_delay_s:
            time.sleep(_gpu.active().build_delay_s)
        if outcome is _gpu.SOFT:
            self._logger.log(Logger.ERROR, 'fake builder: injected build failure')
            return None
        profile = config._profiles[0]._shapes if config._profiles else {}
        tensors = []
        for tensor, mode in [(t, 'input') for t in network._inputs] + [
                (t, 'output') for t in network._outputs]:
            entry = {'name': tensor.name, 'mode': mode, 'dtype': int(tensor.dtype),
                     'shape': list(tensor.shape)}
            if mode == 'input' and -1 in tensor.shape:
                if tensor.name not in profile:
                    self._logger.log(Logger.ERROR, f'Network has dynamic or shape inputs, but '
                                                   f'no optimization profile has been defined '
                                                   f'for {tensor.name}')
                    return None
                entry['profile'] = [list(s) for s in profile[tensor.name]]
            tensors.append(entry)
        if BuilderFlag.INT8 in config._flags and config._int8_calibrator is not None:
            self._calibrate(network, config._int8_calibrator)
        if config._timing_cache is not None:
            config._timing_cache._data += b'tactic\n'
        payload = json.dumps({'tensors': tensors, 'device_memory': _DEVICE_MEMORY,
                              'flags': sorted(f.name for f in config._flags),
                              'plugins': network._plugins,
                              'profiling_verbosity': config.profiling_verbosity.name})
        return IHostMemory(_gpu.plan_header(_VERSION) + payload.encode('utf-8'))

    def _calibrate(self, network, calibrator):
        names = [t.name for t in network._inputs]
        if calibrator.read_calibration_cache():
            _gpu.active().record('calibration.cache_used')
            return
        checksum = 0
        batches = 0
        size = calibrator.get_batch_size()
        while True:
            pointers = calibrator.get_batch(names)
            if pointers is None:
                break
            block, offset = _gpu.active().find(pointers[0])
            checksum = zlib.crc32(bytes(block[offset:]), checksum)
            batches += 1
        _gpu.active().record('calibration.batches', batches, size)
        calibrator.write_calibration_cache(
            f'TRT-100300-EntropyCalibration2\n{names[0]}: {checksum:08x} x{batches}\n'.encode())


class IInt8Calibrator(metaclass=_Bound):
    def __init__(self):
        self._base_initialised = True

    def get_batch_size(self):
        raise NotImplementedError

    def get_batch(self, names):
        raise NotImplementedError

    def read_calibration_cache(self):
        raise NotImplementedError

    def write_calibration_cache(self, cache):
        raise NotImplementedError


class IInt8EntropyCalibrator2(IInt8Calibrator):
    def __init__(self):
        super().__init__()


class Runtime:
    def __init__(self, logger):
        _gpu.active().record('trt.Runtime')
        self._logger = logger

    def deserialize_cuda_engine(self, serialized_engine):
        outcome = _gpu.active().record('Runtime.deserialize_cuda_engine')
        _gpu.active().require_context('deserializeCudaEngine')
        data = bytes(serialized_engine)
        if outcome is _gpu.SOFT or data[:4] != b'ftrt' or tuple(data[24:27]) != _VERSION:
            self._logger.log(Logger.ERROR, 'fake runtime: not a 10.3.0 plan')
            return None
        try:
            description = json.loads(data[27:].decode('utf-8'))
        except ValueError:
            self._logger.log(Logger.ERROR, 'fake runtime: corrupt plan')
            return None
        if description.get('plugins') and not _gpu.active().plugins_registered:
            self._logger.log(Logger.ERROR, f'getPluginCreator could not find plugin '
                                           f'{description["plugins"][0]}')
            return None
        return ICudaEngine(description)


class ICudaEngine:
    def __init__(self, description):
        self._tensors = {t['name']: t for t in description['tensors']}
        self._order = [t['name'] for t in description['tensors']]
        self._device_memory = description['device_memory']

    @property
    def num_io_tensors(self):
        return len(self._order)

    @property
    def device_memory_size_v2(self):
        return self._device_memory

    def get_tensor_name(self, index):
        return self._order[index]

    def get_tensor_mode(self, name):
        if name not in self._tensors:
            return TensorIOMode.NONE
        return TensorIOMode.INPUT if self._tensors[name]['mode'] == 'input' \
            else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return DataType(self._tensors[name]['dtype'])

    def get_tensor_shape(self, name):
        return tuple(self._tensors[name]['shape'])

    def get_tensor_profile_shape(self, name, profile_index):
        profile = self._tensors[name].get('profile')
        if profile is None or profile_index != 0:
            raise ValueError(f'no profile {profile_index} for {name}')
        return [tuple(s) for s in profile]

    def create_execution_context(self, strategy=ExecutionContextAllocationStrategy.STATIC):
        strategy = ExecutionContextAllocationStrategy(strategy)
        outcome = _gpu.active().record('ICudaEngine.create_execution_context', strategy.name)
        _gpu.active().require_context('createExecutionContext')
        if outcome is _gpu.SOFT:
            return None
        return IExecutionContext(self)


class IExecutionContext:
    def __init__(self, engine):
        self._engine = engine
        self._shapes = {}
        self._addresses = {}

    def set_input_shape(self, name, shape):
        if _gpu.active().record('IExecutionContext.set_input_shape', name,
                                tuple(shape)) is _gpu.SOFT:
            return False
        tensor = self._engine._tensors.get(name)
        if tensor is None or tensor['mode'] != 'input' or len(shape) != len(tensor['shape']):
            return False
        low, _, high = tensor.get('profile') or (tensor['shape'],) * 3
        if not all(a <= s <= b for a, s, b in zip(low, shape, high)):
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        tensor = self._engine._tensors[name]
        if tensor['mode'] == 'input':
            return self._shapes.get(name, tuple(tensor['shape']))
        if -1 not in tensor['shape']:
            return tuple(tensor['shape'])
        first = next(t for t in self._engine._tensors.values() if t['mode'] == 'input')
        return self._shapes.get(first['name'], tuple(tensor['shape']))

    def infer_shapes(self):
        return [name for name, tensor in self._engine._tensors.items()
                if tensor['mode'] == 'input' and -1 in tensor['shape']
                and name not in self._shapes]

    def get_max_output_size(self, name):
        tensor = self._engine._tensors.get(name)
        if tensor is None or tensor['mode'] != 'output':
            return -1
        shape = self.get_tensor_shape(name)
        if -1 in shape:
            return -1
        return int(np.prod(shape)) * np.dtype(nptype(tensor['dtype'])).itemsize

    def set_tensor_address(self, name, memory):
        if _gpu.active().record('IExecutionContext.set_tensor_address', name,
                                memory) is _gpu.SOFT:
            return False
        if name not in self._engine._tensors:
            return False
        self._addresses[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle):
        outcome = _gpu.active().record('IExecutionContext.execute_async_v3', stream_handle)
        _gpu.active().require_context('enqueueV3')
        tensors = self._engine._tensors
        if outcome is _gpu.SOFT or set(self._addresses) != set(tensors):
            return False
        shapes = {n: self.get_tensor_shape(n) for n in tensors}
        if any(-1 in s for s in shapes.values()):
            return False
        first = next(t for t in tensors.values() if t['mode'] == 'input')
        values = self._read(first, shapes[first['name']])
        for tensor in tensors.values():
            if tensor['mode'] == 'output':
                result = np.resize(values * 2, shapes[tensor['name']]).astype(
                    nptype(tensor['dtype']))
                block, offset = _gpu.active().find(self._addresses[tensor['name']])
                block[offset:offset + result.nbytes] = result.tobytes()
        return True

    def _read(self, tensor, shape):
        dtype = np.dtype(nptype(tensor['dtype']))
        count = int(np.prod(shape))
        block, offset = _gpu.active().find(self._addresses[tensor['name']])
        data = bytes(block[offset:offset + count * dtype.itemsize])
        return np.frombuffer(data, dtype=dtype).reshape(shape)
