"""Fake polygraphy.backend.trt (Polygraphy 0.49.26): its loaders drive the fake tensorrt.

Class names, public methods and constructor parameters defined here must exist in the real
Polygraphy release (test/test_tensorrt_api_names.py).
"""

import tensorrt as _trt

from fakes import gpu as _gpu


class Profile(dict):
    def add(self, name, min, opt, max):  # noqa: A002 - Polygraphy's parameter names
        self[name] = (tuple(min), tuple(opt), tuple(max))
        return self


class CreateConfig:
    """Polygraphy's defaults included: TF32 off unless asked, DETAILED profiling unless set."""

    def __init__(self, tf32=None, fp16=None, int8=None, calibrator=None, profiles=None,
                 profiling_verbosity=None, memory_pool_limits=None, load_timing_cache=None):
        _gpu.active().record('polygraphy.CreateConfig', bool(fp16), bool(int8),
                             calibrator is not None, load_timing_cache)
        self._tf32 = bool(tf32)
        self._profiling_verbosity = profiling_verbosity
        self._fp16 = fp16
        self._int8 = int8
        self._calibrator = calibrator
        self._profiles = profiles or []
        self._memory_pool_limits = memory_pool_limits or {}

    def __call__(self, builder, network):
        config = builder.create_builder_config()
        config.profiling_verbosity = (_trt.ProfilingVerbosity.DETAILED
                                      if self._profiling_verbosity is None
                                      else self._profiling_verbosity)
        if self._tf32:
            config.set_flag(_trt.BuilderFlag.TF32)
        else:
            config.clear_flag(_trt.BuilderFlag.TF32)
        for pool, size in self._memory_pool_limits.items():
            config.set_memory_pool_limit(pool, size)
        if self._fp16:
            config.set_flag(_trt.BuilderFlag.FP16)
        if self._int8:
            config.set_flag(_trt.BuilderFlag.INT8)
            config.int8_calibrator = self._calibrator
        for profile in self._profiles:
            trt_profile = builder.create_optimization_profile()
            for name, (low, opt, high) in profile.items():
                trt_profile.set_shape(name, low, opt, high)
            config.add_optimization_profile(trt_profile)
        return config


class NetworkFromOnnxPath:
    def __init__(self, path):
        self._path = path

    def __call__(self):
        logger = _trt.Logger(_trt.Logger.WARNING)
        _trt.init_libnvinfer_plugins(logger, '')
        builder = _trt.Builder(logger)
        network = builder.create_network(0)
        parser = _trt.OnnxParser(network, logger)
        if not parser.parse_from_file(self._path):
            raise RuntimeError('Failed to parse ONNX model')
        return builder, network, parser


class EngineBytesFromNetwork:
    def __init__(self, network, config=None, save_timing_cache=None):
        self._network = network
        self._config = config
        self._save_timing_cache = save_timing_cache

    def __call__(self):
        _gpu.active().record('polygraphy.EngineBytesFromNetwork', self._save_timing_cache)
        builder, network, _ = self._network()
        engine = builder.build_serialized_network(network, self._config(builder, network))
        if engine is None:
            raise RuntimeError('Invalid Engine. Please ensure the engine was built correctly')
        return engine
