"""Every TensorRT and PyCUDA name in use exists on the class it is used on, in the real release.

Ground truth (test/fakes/api/, copies of ../shared/): every Python class and enum of
TensorRT 10.3 with the names bound on it, parsed from NVIDIA/TensorRT python/src at tag
v10.3.0, and PyCUDA 2024.1.2's driver functions (argument names in order), classes and
members, parsed from inducer/pycuda at tag v2024.1.2. A static parse misses a few names that
are bound by other means; those are listed below, each with where it was read.

Three checks, per class, never "somewhere in the library":
- every public member of every fake class (and every fake module-level name) exists on the
  real class of that name, and the argument names agree where they are known; so a name the
  fakes accept is a name the real library has, on that class;
- every attribute the code reads from the `trt` / `cuda` modules (`trt.X`, `trt.X.Y`) exists
  there, on that class;
- every attribute the code reads from a TensorRT / PyCUDA object while it compiles, loads,
  infers and releases (recorded on the fakes' instances) exists on that object's real class.
The mutation tests show that adding `execute_async` to the fake IExecutionContext (or
`max_batch_size` to the fake Builder, both gone in TensorRT 10) fails the first check.
"""

import ast
from functools import lru_cache
import inspect
import json
from pathlib import Path
import sys
from typing import Dict, Iterable, List, Set, Tuple

from fakes import gpu
from fakes.engines import build_engine, make_dynamic_onnx, TRT
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / 'test' / 'fakes'
FAKE_TENSORRT = FAKES / 'tensorrt.py'
FAKE_DRIVER = FAKES / 'pycuda' / 'driver.py'
PACKAGE = ROOT / 'gps_denied_inference'
CODE = [PACKAGE / 'runtimes' / 'cuda_context.py', PACKAGE / 'runtimes' / 'tensorrt.py',
        PACKAGE / 'runtimes' / 'device_probe.py', PACKAGE / 'compiler' / 'engine_build.py',
        PACKAGE / 'compiler' / 'calibration.py']
MODULE_ALIASES = {'trt': 'tensorrt', 'cuda': 'pycuda'}

# Bound on the classes but missed by the static parse (read in the v10.3.0 sources):
# python/src/infer/pyCore.cpp 684-696: ILogger's Severity enum with export_values() and
# ILogger.log; python/packaging/bindings_wheel/tensorrt/__init__.py: __version__, nptype, volume.
TENSORRT_SUPPLEMENT = {
    'ILogger': {'log', 'Severity', 'INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE'},
    'ILogger.Severity': {'INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE'},
}
TENSORRT_PYTHON_LEVEL = {'__version__', 'nptype', 'volume'}
# Base classes of the bound classes (py::class_<Derived, Base>): pyCore.cpp 757 (Logger),
# pyInt8.cpp (the calibrators derive IInt8Calibrator).
TENSORRT_BASES = {'Logger': ('ILogger',), 'IInt8EntropyCalibrator2': ('IInt8Calibrator',)}
# include/NvInferRuntimeBase.h at v10.3.0, enum class DataType.
TENSORRT_DATA_TYPES = {'FLOAT': 0, 'HALF': 1, 'INT8': 2, 'INT32': 3, 'BOOL': 4, 'UINT8': 5,
                       'FP8': 6, 'BF16': 7, 'INT64': 8, 'INT4': 9}
# Argument names read in python/src at v10.3.0 (pyCore.cpp, pyOnnx.cpp, pyPlugin.cpp).
TENSORRT_SIGNATURES = {
    'init_libnvinfer_plugins': ('logger', 'namespace'),
    'Logger.__init__': ('min_severity',), 'Logger.log': ('severity', 'msg'),
    'ILogger.log': ('severity', 'msg'),
    'Builder.__init__': ('logger',), 'Runtime.__init__': ('logger',),
    'OnnxParser.__init__': ('network', 'logger'),
    'OnnxParser.parse_from_file': ('model',), 'OnnxParser.get_error': ('index',),
    'Builder.create_network': ('flags',),
    'Builder.build_serialized_network': ('network', 'config'),
    'IBuilderConfig.set_memory_pool_limit': ('pool', 'pool_size'),
    'IBuilderConfig.set_flag': ('flag',), 'IBuilderConfig.clear_flag': ('flag',),
    'IBuilderConfig.get_flag': ('flag',),
    'IBuilderConfig.add_optimization_profile': ('profile',),
    'IBuilderConfig.set_calibration_profile': ('profile',),
    'IBuilderConfig.create_timing_cache': ('serialized_timing_cache',),
    'IBuilderConfig.set_timing_cache': ('cache', 'ignore_mismatch'),
    'IOptimizationProfile.set_shape': ('input', 'min', 'opt', 'max'),
    'Runtime.deserialize_cuda_engine': ('serialized_engine',),
    'ICudaEngine.get_tensor_name': ('index',), 'ICudaEngine.get_tensor_mode': ('name',),
    'ICudaEngine.get_tensor_dtype': ('name',), 'ICudaEngine.get_tensor_shape': ('name',),
    'ICudaEngine.get_tensor_profile_shape': ('name', 'profile_index'),
    'ICudaEngine.create_execution_context': ('strategy',),
    'IExecutionContext.set_input_shape': ('name', 'shape'),
    'IExecutionContext.get_tensor_shape': ('name',),
    'IExecutionContext.set_tensor_address': ('name', 'memory'),
    'IExecutionContext.get_max_output_size': ('name',),
    'IExecutionContext.infer_shapes': (),
    'IExecutionContext.execute_async_v3': ('stream_handle',),
}
# Bound by src/wrapper/wrap_cudadrv.cpp at v2024.1.2 but missed by the parse: the exception
# classes (DECLARE_EXC, 686-695), the event_flags enum (734-745), and the constructors
# Stream(flags=0) (1244) and Event(flags) with record(stream) (1633-1636).
PYCUDA_SUPPLEMENT = {
    'Error': set(), 'MemoryError': set(), 'LogicError': set(), 'LaunchError': set(),
    'RuntimeError': set(),
    'event_flags': {'DEFAULT', 'BLOCKING_SYNC', 'DISABLE_TIMING', 'INTERPROCESS'},
}
PYCUDA_SIGNATURES = {'Stream.__init__': ('flags',), 'Event.__init__': ('flags',),
                     'Event.record': ('stream',), 'Event.synchronize': ()}
# What a fake may define without the real class spelling it: construction and display.
EXEMPT_DUNDERS = {'__init__', '__new__', '__repr__', '__str__', '__hash__'}


# -- the real releases ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def tensorrt_api() -> Dict[str, Set[str]]:
    """Class or 'Class.Nested' -> real members; '' -> module-level names."""
    data = json.loads((FAKES / 'api' / 'tensorrt-10.3.0-python-api.json').read_text())
    api = {name: set(entry['members']) for name, entry in data['classes'].items()}
    for name, members in TENSORRT_SUPPLEMENT.items():
        api[name] = api.get(name, set()) | members
    api[''] = set(data['classes']) | set(data['module_functions']) | TENSORRT_PYTHON_LEVEL
    return api


@lru_cache(maxsize=None)
def pycuda_api() -> Tuple[Dict[str, Set[str]], Dict[str, Tuple[str, ...]]]:
    """(class -> real members, '' -> module names), and function -> argument names."""
    data = json.loads((FAKES / 'api' / 'pycuda-2024.1.2-driver-api.json').read_text())
    api = {name: set(members) for name, members in data['classes'].items()}
    for name, members in PYCUDA_SUPPLEMENT.items():
        api[name] = api.get(name, set()) | members
    api[''] = set(api) | set(data['functions']) | set(data['driver_py_names'])
    functions = {name: tuple(args) for name, args in data['functions'].items()}
    return api, functions


# -- the fakes, read statically ----------------------------------------------------------------

def _is_public(name: str) -> bool:
    return not name.startswith('_') or (name.startswith('__') and name.endswith('__'))


def _denies(function: ast.FunctionDef) -> bool:
    """A dunder that only refuses (raise TypeError / return NotImplemented) adds nothing."""
    body = [node for node in function.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    if len(body) != 1:
        return False
    node = body[0]
    if isinstance(node, ast.Raise):
        call = node.exc
        return isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'TypeError'
    return isinstance(node, ast.Return) and getattr(node.value, 'id', '') == 'NotImplemented'


def class_members(node: ast.ClassDef) -> Dict[str, ast.AST]:
    """Public members a fake class body defines, its __init__'s self attributes included.

    Methods, properties, class attributes and nested classes count; a dunder that only
    refuses, or one of EXEMPT_DUNDERS, does not.
    """
    members: Dict[str, ast.AST] = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            if item.name.startswith('__') and (item.name in EXEMPT_DUNDERS or _denies(item)):
                pass
            else:
                members[item.name] = item
            if item.name == '__init__':
                for sub in ast.walk(item):
                    if isinstance(sub, ast.Assign):
                        for target in sub.targets:
                            if isinstance(target, ast.Attribute) and isinstance(
                                    target.value, ast.Name) and target.value.id == 'self':
                                members[target.attr] = sub
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                if isinstance(target, ast.Name) and target.id not in EXEMPT_DUNDERS:
                    members[target.id] = item
        elif isinstance(item, ast.ClassDef):
            members[item.name] = item
    return {name: node for name, node in members.items() if _is_public(name)}


def fake_classes(source: str) -> Dict[str, Tuple[ast.ClassDef, List[str]]]:
    """Public fake classes (nested ones as 'Outer.Inner') with their fake base names."""
    classes = {}

    def visit(node: ast.ClassDef, prefix: str) -> None:
        name = prefix + node.name
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        classes[name] = (node, bases)
        for item in node.body:
            if isinstance(item, ast.ClassDef):
                visit(item, name + '.')
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and _is_public(node.name):
            visit(node, '')
    return classes


def module_names(source: str) -> Set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if _is_public(n)}


def fake_members_missing_in_real(source: str, api: Dict[str, Set[str]]) -> List[str]:
    """'Class.member' (or 'name' at module level) a fake defines that the real one lacks."""
    missing = sorted(n for n in module_names(source) if n not in api[''])
    classes = fake_classes(source)
    for name, (node, bases) in classes.items():
        if name not in api:
            missing.append(name)
            continue
        real = set(api[name])
        for base in bases:
            real |= api.get(base, set())
        missing += [f'{name}.{member}' for member in class_members(node) if member not in real]
    return sorted(missing)


def _parameters(function: ast.FunctionDef) -> Tuple[Tuple[str, ...], bool]:
    """(argument names without self, whether they are all positional-only)."""
    args = function.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    if names[:1] == ['self'] or names[:1] == ['cls']:
        names = names[1:]
    positional_only = bool(args.posonlyargs) and not args.args and not args.kwonlyargs
    return tuple(names), positional_only


def signature_disagreements(source: str, known: Dict[str, Tuple[str, ...]],
                            bare_functions: bool = True) -> List[str]:
    """'name: fake (...) real (...)' for every known signature the fake spells differently.

    A real function bound without argument names ([] in the PyCUDA data) takes them by
    position only, so the fake must too.
    """
    found: Dict[str, ast.FunctionDef] = {}
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and _is_public(node.name):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    found[f'{node.name}.{item.name}'] = item
    problems = []
    for name, real in known.items():
        if name not in found:
            continue
        fake, positional_only = _parameters(found[name])
        if real == () and '.' not in name and bare_functions and fake:
            if not positional_only:
                problems.append(f'{name}: fake ({", ".join(fake)}) takes keywords, the real '
                                'one takes its arguments by position only')
            continue
        if fake != real:
            problems.append(f'{name}: fake ({", ".join(fake)}), real ({", ".join(real)})')
    return problems


# -- the code, read statically -------------------------------------------------------------------

def module_attribute_uses(paths: Iterable[Path] = CODE) -> Dict[str, Set[str]]:
    """'tensorrt' / 'pycuda' -> {'X', 'X.Y', ...} read from the `trt` / `cuda` names."""
    uses: Dict[str, Set[str]] = {'tensorrt': set(), 'pycuda': set()}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            chain = []
            current: ast.AST = node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in MODULE_ALIASES:
                chain.reverse()
                for depth in range(1, min(len(chain), 2) + 1):
                    uses[MODULE_ALIASES[current.id]].add('.'.join(chain[:depth]))
    return uses


def missing_module_uses(uses: Set[str], api: Dict[str, Set[str]],
                        bases: Dict[str, Tuple[str, ...]] = TENSORRT_BASES) -> List[str]:
    """'Class.member' (or 'name') that is not bound on that class or its real bases."""
    missing = []
    for use in sorted(uses):
        owner, _, member = use.rpartition('.')
        if member.startswith('__'):
            continue  # Python's own (an enum's __members__), not the binding's
        if owner == '':
            if use not in api['']:
                missing.append(use)
        elif owner in api and member not in api[owner].union(
                *(api.get(base, set()) for base in bases.get(owner, ()))):
            missing.append(use)
        elif owner not in api:
            missing.append(use)
    return missing


# -- the code, observed at run time ------------------------------------------------------------

def record_object_uses(modules: Iterable[object]) -> Tuple[Set[Tuple[str, str]], callable]:
    """Record (module, 'Class.attribute') our package reads or sets on fake instances."""
    seen: Set[Tuple[str, str]] = set()
    patched = []
    package = str(PACKAGE)

    def note(self: object, name: str, module_name: str) -> None:
        """Record a name the library owns: one a fake class defines, or a fake's own.

        Our subclasses' own attributes (the calibrator's `error`) are not the library's.
        """
        if not _is_public(name) or name.startswith('__') or not sys._getframe(
                2).f_code.co_filename.startswith(package):
            return
        mro = type(self).__mro__
        owner = next((k for k in mro if name in vars(k)), None)
        if owner is None and getattr(type(self), '__module__', '') == module_name:
            owner = type(self)
        if owner is not None and getattr(owner, '__module__', '') == module_name:
            fake = next(k for k in mro if getattr(k, '__module__', '') == module_name)
            seen.add((module_name, f'{fake.__qualname__}.{name}'))

    def make(cls: type, module_name: str) -> Tuple[object, object]:
        get, put = cls.__getattribute__, cls.__setattr__

        def getattribute(self, name):
            note(self, name, module_name)
            return get(self, name)

        def setattr_(self, name, value):
            note(self, name, module_name)
            put(self, name, value)
        return getattribute, setattr_

    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and _is_public(cls.__name__) \
                    and not issubclass(cls, (BaseException, int, type)):
                patched.append((cls, {k: cls.__dict__[k] for k in ('__getattribute__',
                                                                   '__setattr__')
                                      if k in cls.__dict__}))
                cls.__getattribute__, cls.__setattr__ = make(cls, module.__name__)

    def restore() -> None:
        for cls, previous in patched:
            for key in ('__getattribute__', '__setattr__'):
                if key in previous:
                    setattr(cls, key, previous[key])
                else:
                    delattr(cls, key)
    return seen, restore


def exercise_every_path(tmp_path: Path) -> None:
    """Compile (builder, Polygraphy, INT8 calibration), load, prepare, infer and release."""
    import cv2

    from gps_denied_inference.compiler.build_config import build_config_from_dict
    from gps_denied_inference.runtimes.settings import RuntimeConfig
    from gps_denied_inference.runtimes.tensorrt import TensorrtRuntime

    profile = {'min': [1, 1, 8, 8], 'opt': [1, 1, 16, 16], 'max': [1, 1, 32, 32]}
    dynamic = build_engine(tmp_path, 'dynamic', dynamic=True,
                           config=build_config_from_dict({'profiles': {'image': profile}}))
    build_engine(tmp_path, 'poly', config=build_config_from_dict({'backend': 'polygraphy'}))
    dataset = tmp_path / 'calib'
    dataset.mkdir()
    for index in range(2):
        cv2.imwrite(str(dataset / f'{index}.png'), np.full((16, 16), index * 40, np.uint8))
    build_engine(tmp_path, 'int8', config=build_config_from_dict(
        {'precision': 'int8', 'int8_source': 'calibration',
         'calibration': {'dataset_dir': str(dataset), 'cache': str(tmp_path / 'c.calib')}}))
    runtime = TensorrtRuntime(config=RuntimeConfig())
    handle = runtime.deserialize_engine('dynamic', str(dynamic), TRT)
    runtime.prepare_execution(handle)
    runtime.infer(handle, {'image': np.ones((1, 1, 8, 12), np.float32)})
    runtime.release_engine(handle)
    assert make_dynamic_onnx  # the dynamic model above comes from it


# -- the checks --------------------------------------------------------------------------------

def test_every_fake_tensorrt_member_exists_on_its_real_class():
    assert fake_members_missing_in_real(FAKE_TENSORRT.read_text(), tensorrt_api()) == []


def test_every_fake_pycuda_member_exists_on_its_real_class():
    assert fake_members_missing_in_real(FAKE_DRIVER.read_text(), pycuda_api()[0]) == []


def test_the_fakes_take_the_real_argument_names():
    assert signature_disagreements(FAKE_TENSORRT.read_text(), TENSORRT_SIGNATURES) == []
    known = dict(pycuda_api()[1], **PYCUDA_SIGNATURES)
    assert signature_disagreements(FAKE_DRIVER.read_text(), known) == []
    assert pycuda_api()[1]['memcpy_htod_async'] == ('dest', 'src', 'stream')


def test_fake_data_types_have_the_real_values():
    with gpu.installed():
        import tensorrt as trt
        assert {t.name: int(t) for t in trt.DataType} == TENSORRT_DATA_TYPES
        with pytest.raises(TypeError):
            trt.nptype(trt.DataType.BF16)


def test_every_trt_and_cuda_module_attribute_the_code_reads_exists_on_its_class():
    uses = module_attribute_uses()
    assert {'Runtime', 'Logger', 'Logger.WARNING', 'BuilderFlag.TF32', 'init_libnvinfer_plugins',
            'ExecutionContextAllocationStrategy.USER_MANAGED',
            'IInt8EntropyCalibrator2'} <= uses['tensorrt']
    assert {'Device', 'Context.pop', 'Event', 'event_flags.BLOCKING_SYNC',
            'memcpy_htod_async', 'mem_alloc'} <= uses['pycuda']
    assert missing_module_uses(uses['tensorrt'], tensorrt_api()) == []
    assert missing_module_uses(uses['pycuda'], pycuda_api()[0]) == []


def test_every_attribute_the_code_reads_on_a_tensorrt_or_pycuda_object_is_real(tmp_path):
    with gpu.installed():
        import pycuda.driver as cuda
        import tensorrt as trt
        seen, restore = record_object_uses([trt, cuda])
        try:
            exercise_every_path(tmp_path)
        finally:
            restore()
    used = {module: {use for m, use in seen if m == module} for module in ('tensorrt',
                                                                           'pycuda.driver')}
    assert {'IExecutionContext.execute_async_v3', 'ICudaEngine.device_memory_size_v2',
            'IBuilderConfig.int8_calibrator', 'Builder.build_serialized_network',
            'IExecutionContext.infer_shapes'} <= used['tensorrt']
    assert {'Context.push', 'Context.detach', 'Stream.handle', 'Event.synchronize',
            'DeviceAllocation.free', 'Device.retain_primary_context'} <= used['pycuda.driver']
    assert missing_module_uses(used['tensorrt'], tensorrt_api()) == []
    assert missing_module_uses(used['pycuda.driver'], pycuda_api()[0]) == []


# -- the checks catch what they are for --------------------------------------------------------

def _with_member(source: str, cls: str, member: str) -> str:
    marker = f'class {cls}:\n'
    assert marker in source
    return source.replace(marker, f'{marker}    def {member}(self, *args):\n'
                                  f'        return True\n\n', 1)


@pytest.mark.parametrize('cls,member', [('IExecutionContext', 'execute_async'),
                                        ('Builder', 'max_batch_size'),
                                        ('IBuilderConfig', 'max_workspace_size'),
                                        ('ICudaEngine', 'num_bindings')])
def test_a_member_removed_in_tensorrt_10_added_to_a_fake_is_caught(cls, member):
    mutated = _with_member(FAKE_TENSORRT.read_text(), cls, member)
    assert fake_members_missing_in_real(mutated, tensorrt_api()) == [f'{cls}.{member}']


def test_a_real_member_on_the_wrong_class_is_caught():
    mutated = _with_member(FAKE_TENSORRT.read_text(), 'Runtime', 'create_execution_context')
    assert fake_members_missing_in_real(mutated, tensorrt_api()) == [
        'Runtime.create_execution_context']


def test_a_pycuda_signature_that_disagrees_is_caught():
    source = FAKE_DRIVER.read_text().replace('def memcpy_htod_async(dest, src, stream=None):',
                                             'def memcpy_htod_async(dest, src):')
    known = dict(pycuda_api()[1], **PYCUDA_SIGNATURES)
    assert signature_disagreements(source, known) == [
        'memcpy_htod_async: fake (dest, src), real (dest, src, stream)']


def test_a_code_use_of_a_missing_name_is_caught(tmp_path):
    code = tmp_path / 'code.py'
    code.write_text('def f(trt, cuda, engine):\n'
                    '    trt.Builder.max_batch_size\n'
                    '    cuda.make_primary_context()\n'
                    '    return trt.DataType.INT64\n')
    uses = module_attribute_uses([code])
    assert missing_module_uses(uses['tensorrt'], tensorrt_api()) == ['Builder.max_batch_size']
    assert missing_module_uses(uses['pycuda'], pycuda_api()[0]) == ['make_primary_context']


# -- the fakes are as strict as the real libraries ---------------------------------------------

@pytest.fixture
def fake():
    with gpu.installed() as device:
        device.stack().append('context')
        yield device


def test_a_copy_needs_a_real_stream_and_a_contiguous_array(fake):
    import pycuda.driver as cuda
    device = cuda.mem_alloc(64)
    with pytest.raises(TypeError, match='Stream'):
        cuda.memcpy_htod_async(device, np.zeros(4, np.float32), 0x5001)
    with pytest.raises(BufferError, match='contiguous'):
        cuda.memcpy_htod_async(device, np.zeros((4, 4), np.float32)[:, 1], cuda.Stream())
    with pytest.raises(BufferError, match='contiguous'):
        cuda.memcpy_dtoh_async(np.zeros((4, 4), np.float32)[:, 1], device, cuda.Stream())
    cuda.memcpy_htod_async(device, np.zeros(4, np.float32), cuda.Stream())


def test_a_device_to_device_copy_is_checked_like_the_other_copies(fake):
    import pycuda.driver as cuda
    source, target = cuda.mem_alloc(8), cuda.mem_alloc(8)
    cuda.memcpy_htod(source, np.arange(8, dtype=np.uint8))
    with pytest.raises(TypeError, match='Stream'):
        cuda.memcpy_dtod_async(target, source, 8, 0x5001)
    with pytest.raises(cuda.LogicError, match='past the end'):
        cuda.memcpy_dtod_async(target, source, 9, cuda.Stream())
    cuda.memcpy_dtod_async(target, source, 8, cuda.Stream())
    result = np.zeros(8, np.uint8)
    cuda.memcpy_dtoh_async(result, target)
    assert result.tolist() == list(range(8))


def test_mem_get_info_needs_a_context_and_the_versions_do_not(fake):
    import pycuda.driver as cuda
    free, total = cuda.mem_get_info()
    cuda.mem_alloc(1 << 20)
    assert cuda.mem_get_info() == (free - (1 << 20), total)
    fake.stack().clear()
    with pytest.raises(cuda.LogicError, match='invalid device context'):
        cuda.mem_get_info()
    assert cuda.get_driver_version() == 12060 and cuda.get_version() == (12, 6, 0)


def test_mem_alloc_of_nothing_fails_and_takes_its_size_by_position(fake):
    import pycuda.driver as cuda
    with pytest.raises(cuda.LogicError):
        cuda.mem_alloc(0)
    with pytest.raises(TypeError):
        cuda.mem_alloc(nbytes=4)


def test_a_subclass_that_skips_the_base_init_fails_like_pybind11(fake):
    import tensorrt as trt

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            pass

    class Logger(trt.ILogger):
        def __init__(self):
            pass

    for cls in (Calibrator, Logger):
        with pytest.raises(TypeError, match='must be called when overriding __init__'):
            cls()


def test_host_memory_is_a_buffer_not_bytes(fake):
    import tensorrt as trt
    memory = trt.IHostMemory(b'ftrt-plan')
    assert bytes(memory) == b'ftrt-plan' and memoryview(memory).nbytes == memory.nbytes == 9
    assert not isinstance(memory, bytes)
    for misuse in (len, lambda m: m[:4], lambda m: m + b'', lambda m: m.startswith(b'f')):
        with pytest.raises((TypeError, AttributeError)):
            misuse(memory)


# -- Polygraphy: the classes and keywords the build uses exist in 0.49.26 -------------------------

POLYGRAPHY_PIN = '0.49.26'
CACHE = ROOT / 'build' / 'cache' / 'api-names' / 'polygraphy'


@lru_cache(maxsize=None)
def polygraphy_classes() -> Dict[str, Tuple[Set[str], Set[str], Set[str]]]:
    """Class -> (bases, methods, __init__ parameters) in Polygraphy's TensorRT backend.

    Read from the wheel, downloaded once with pip into build/cache; the test is skipped when
    PyPI cannot be reached.
    """
    import subprocess
    import zipfile

    wheels = sorted(CACHE.glob(f'polygraphy-{POLYGRAPHY_PIN}-*.whl'))
    if not wheels:
        CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps',
                                 '--disable-pip-version-check', '-d', str(CACHE),
                                 f'polygraphy=={POLYGRAPHY_PIN}'],
                                capture_output=True, text=True, timeout=300)
        wheels = sorted(CACHE.glob(f'polygraphy-{POLYGRAPHY_PIN}-*.whl'))
        if not wheels:
            pytest.skip(f'cannot download polygraphy {POLYGRAPHY_PIN}: '
                        f'{result.stderr.strip()[-300:]}')
    classes = {}
    with zipfile.ZipFile(wheels[0]) as archive:
        for name in archive.namelist():
            if name.startswith('polygraphy/backend/trt/') and name.endswith('.py'):
                for node in ast.parse(archive.read(name)).body:
                    if isinstance(node, ast.ClassDef):
                        methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                        init = next((f for f in node.body if isinstance(f, ast.FunctionDef)
                                     and f.name == '__init__'), None)
                        params = set() if init is None else {
                            a.arg for a in init.args.args + init.args.kwonlyargs}
                        bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                        classes[node.name] = (bases, methods, params)
    return classes


def test_the_polygraphy_names_and_keywords_in_use_exist():
    classes = polygraphy_classes()

    def lineage(name):
        seen, todo = [], [name]
        while todo:
            current = todo.pop()
            if current in classes and current not in seen:
                seen.append(current)
                todo.extend(classes[current][0])
        return seen

    tree = ast.parse((PACKAGE / 'compiler' / 'engine_build.py').read_text())
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                'CreateConfig', 'EngineBytesFromNetwork', 'NetworkFromOnnxPath', 'Profile'):
            chain = lineage(node.func.id)
            params = set().union(*(classes[c][2] for c in chain)) if chain else set()
            missing += [f'{node.func.id}({k.arg}=)' for k in node.keywords
                        if k.arg not in params]
    assert {'tf32', 'profiling_verbosity'} <= set().union(
        *(classes[c][2] for c in lineage('CreateConfig')))
    assert missing == []
    fake = fake_classes((FAKES / 'polygraphy' / 'backend' / 'trt.py').read_text())
    for name, (node, _) in fake.items():
        chain = lineage(name)
        assert chain, name
        init = next((f for f in node.body if isinstance(f, ast.FunctionDef)
                     and f.name == '__init__'), None)
        params = set() if init is None else {a.arg for a in init.args.args[1:]}
        assert params <= set().union(*(classes[c][2] for c in chain)), name
