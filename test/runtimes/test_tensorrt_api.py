"""The fakes are honest: the TensorRT, PyCUDA and Polygraphy names in use exist in reality.

Every name the runtime modules and the fakes use must exist in the real releases the drone
runs.

The real releases are downloaded once from PyPI (cached under build/cache/api-names/):
tensorrt-cu12-bindings 10.3.0 (its API names are plain strings in the bindings library; the
Python-level ones are in its __init__.py), the PyCUDA sdist (names are registered in
src/wrapper/*.cpp or defined in pycuda/driver.py) and the Polygraphy wheel (pure Python,
parsed). The names checked are collected from the source, not listed by hand: attributes
taken from the `trt` / `cuda` module names in the runtime modules, and every public name,
member and constructor parameter the fake modules define.
"""

import ast
import functools
from pathlib import Path
import re
import subprocess
import sys
import tarfile
from typing import Dict, Iterable, List, Set, Tuple
import zipfile

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / 'build' / 'cache' / 'api-names'
TENSORRT_PIN = '10.3.0'
PYCUDA_PIN = '2024.1.2'
POLYGRAPHY_PIN = '0.49.26'
RUNTIME_MODULES = [ROOT / 'gps_denied_inference' / f'{name}.py' for name in (
    'runtimes/tensorrt', 'compiler/engine_build', 'compiler/calibration', 'runtimes/cuda_context')]
FAKES = ROOT / 'test' / 'fakes'
FAKE_TENSORRT = FAKES / 'tensorrt.py'
FAKE_DRIVER = FAKES / 'pycuda' / 'driver.py'
FAKE_POLYGRAPHY = FAKES / 'polygraphy' / 'backend' / 'trt.py'
MODULE_ALIASES = {'tensorrt': 'trt', 'pycuda.driver': 'cuda'}
REMOVED_IN_TENSORRT_10 = ('num_bindings', 'get_binding_shape', 'max_workspace_size')
# Python protocol methods every fake may define without the real class spelling them.
PROTOCOL = {'__init__', '__str__', '__repr__', '__call__'}


# -- the real releases -----------------------------------------------------------------------

def _download(subdir: str, pattern: str, args: List[str]) -> Path:
    target = CACHE / subdir
    found = sorted(target.glob(pattern))
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps',
                             '--disable-pip-version-check', '-d', str(target), *args],
                            capture_output=True, text=True, timeout=600)
    found = sorted(target.glob(pattern))
    if result.returncode != 0 or not found:
        pytest.skip(f'cannot download {" ".join(args)} from PyPI (needed to check the fakes '
                    f'against the real release): {result.stderr.strip()[-400:]}')
    return found[0]


@functools.lru_cache(maxsize=None)
def tensorrt_release() -> Tuple[bytes, str]:
    """(bindings library bytes, __init__.py text) of tensorrt-cu12-bindings."""
    wheel = _download('tensorrt', 'tensorrt_cu12_bindings-*.whl', [
        f'tensorrt-cu12-bindings=={TENSORRT_PIN}', '--python-version', '3.10',
        '--only-binary', ':all:', '--platform', 'manylinux_2_17_x86_64'])
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        library = next(n for n in names if re.search(r'tensorrt_bindings/tensorrt.*\.so$', n))
        return archive.read(library), archive.read('tensorrt_bindings/__init__.py').decode()


@functools.lru_cache(maxsize=None)
def pycuda_release() -> Tuple[str, str]:
    """(C++ wrapper sources, pycuda/driver.py) of the PyCUDA sdist."""
    sdist = _download('pycuda', 'pycuda-*.tar.gz', [
        f'pycuda=={PYCUDA_PIN}', '--no-binary', ':all:', '--no-build-isolation'])
    wrappers, driver = [], ''
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if re.search(r'/src/wrapper/[^/]+\.cpp$', member.name):
                wrappers.append(archive.extractfile(member).read().decode('utf-8', 'replace'))
            elif member.name.endswith('/pycuda/driver.py'):
                driver = archive.extractfile(member).read().decode('utf-8')
    return '\n'.join(wrappers), driver


@functools.lru_cache(maxsize=None)
def polygraphy_classes() -> Dict[str, Tuple[Set[str], Set[str], Set[str]]]:
    """Map class name -> (base names, method names, __init__ parameters) over all of Polygraphy."""
    wheel = _download('polygraphy', 'polygraphy-*.whl', [
        f'polygraphy=={POLYGRAPHY_PIN}', '--only-binary', ':all:'])
    classes = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not (name.startswith('polygraphy/') and name.endswith('.py')):
                continue
            for node in ast.walk(ast.parse(archive.read(name))):
                if isinstance(node, ast.ClassDef):
                    methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                    init = next((f for f in node.body if isinstance(f, ast.FunctionDef)
                                 and f.name == '__init__'), None)
                    params = set() if init is None else {
                        a.arg for a in init.args.args + init.args.kwonlyargs}
                    bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                    classes[node.name] = (bases, methods, params)
    return classes


def missing_in_tensorrt(names: Iterable[str]) -> List[str]:
    """Names found neither as a string in the bindings library nor defined in __init__.py."""
    library, init = tensorrt_release()
    return sorted(n for n in set(names)
                  if n.encode() + b'\0' not in library
                  and not re.search(rf'^(def|class)\s+{re.escape(n)}\b|^{re.escape(n)}\s*=',
                                    init, re.MULTILINE))


def missing_in_pycuda(names: Iterable[str]) -> List[str]:
    """Names neither registered by the C++ wrappers nor defined in pycuda/driver.py."""
    wrappers, driver = pycuda_release()

    def registered(name: str) -> bool:
        quoted = re.escape(name)
        return bool(re.search(rf'(?<!arg)(?<!args)\(\s*"{quoted}"|DEF_SIMPLE_\w*\({quoted}\b'
                              rf'|DECLARE_EXC\({quoted},', wrappers)
                    or re.search(rf'^\s*def {quoted}\(|^class {quoted}\b|^{quoted}\s*=',
                                 driver, re.MULTILINE))
    return sorted(n for n in set(names) if not registered(n))


def missing_in_polygraphy(fake: Dict[str, Tuple[Set[str], Set[str]]]) -> List[str]:
    """'Class', 'Class.method' or 'Class(param=)' of the fake absent from real Polygraphy."""
    classes = polygraphy_classes()

    def lineage(name: str) -> List[str]:
        seen, todo = [], [name]
        while todo:
            current = todo.pop()
            if current in classes and current not in seen:
                seen.append(current)
                todo.extend(classes[current][0])
        return seen

    missing = []
    for name, (methods, params) in fake.items():
        chain = lineage(name)
        if not chain:
            missing.append(name)
            continue
        real_methods = set().union(*(classes[c][1] for c in chain))
        real_params = set().union(*(classes[c][2] for c in chain))
        missing += [f'{name}.{m}' for m in methods if m not in real_methods]
        missing += [f'{name}({p}=)' for p in params if p not in real_params]
    return sorted(missing)


# -- the names in use ------------------------------------------------------------------------

def _chain(node: ast.Attribute) -> Tuple[str, List[str]]:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else ''), attrs[::-1]


def runtime_names(module: str) -> Set[str]:
    """Attributes read from the `trt` / `cuda` module names (imported or passed in).

    The runtime modules always hold these modules in a local or parameter of that name (never
    in an attribute such as `self._cuda`), so this sees every use.
    """
    alias = MODULE_ALIASES[module]
    names = set()
    for path in RUNTIME_MODULES:
        tree = ast.parse(path.read_text())
        aliases = {alias} | {a.asname or a.name for node in ast.walk(tree)
                             if isinstance(node, ast.Import) for a in node.names
                             if a.name == module}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                root, attrs = _chain(node)
                if root in aliases:
                    names.update(a for a in attrs if a not in PROTOCOL)
    return names


def _public(name: str) -> bool:
    return not name.startswith('_') or (name.startswith('__') and name.endswith('__')
                                        and name not in PROTOCOL)


def _class_members(node: ast.ClassDef) -> Set[str]:
    members = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            members.add(item.name)
            if item.name == '__init__':
                members.update(t.attr for n in ast.walk(item) if isinstance(n, ast.Assign)
                               for t in n.targets if isinstance(t, ast.Attribute)
                               and isinstance(t.value, ast.Name) and t.value.id == 'self')
        elif isinstance(item, ast.Assign):
            members.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(item, ast.ClassDef):
            members.add(item.name)
            members.update(_class_members(item))
    return {m for m in members if _public(m)}


def fake_names(path: Path) -> Set[str]:
    """Every public module-level name, class member and instance attribute a fake defines."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and _public(node.name):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names.update(_class_members(node))
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name)
                         and _public(t.id))
    return names


def fake_polygraphy() -> Dict[str, Tuple[Set[str], Set[str]]]:
    """Map class -> (public methods, __init__ parameters) of the fake polygraphy.backend.trt."""
    classes = {}
    for node in ast.parse(FAKE_POLYGRAPHY.read_text()).body:
        if isinstance(node, ast.ClassDef):
            methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)
                       and _public(f.name)}
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef)
                         and f.name == '__init__'), None)
            params = set() if init is None else {a.arg for a in init.args.args[1:]}
            classes[node.name] = (methods, params)
    return classes


def polygraphy_uses() -> Dict[str, Tuple[Set[str], Set[str]]]:
    """Classes the build imports from polygraphy.backend.trt and the keywords it passes."""
    tree = ast.parse((ROOT / 'gps_denied_inference' / 'compiler' / 'engine_build.py').read_text())
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == 'polygraphy.backend.trt' for a in node.names}
    uses = {name: (set(), set()) for name in imported}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in imported:
            uses[node.func.id][1].update(k.arg for k in node.keywords if k.arg)
    return uses


# -- the checks ------------------------------------------------------------------------------

def test_the_runtime_uses_tensorrt_and_pycuda_names_at_all():
    """Guards the collection itself: an empty set would make the checks below vacuous."""
    assert {'Runtime', 'Logger', 'TensorIOMode', 'IInt8EntropyCalibrator2',
            'BuilderFlag', 'MemoryPoolType', 'WORKSPACE', 'nptype'} <= runtime_names(
        'tensorrt')
    assert {'init', 'Device', 'Context', 'pop', 'mem_alloc'} <= runtime_names('pycuda.driver')
    assert {'ICudaEngine', 'execute_async_v3', 'set_tensor_address',
            'device_memory_size_v2'} <= fake_names(FAKE_TENSORRT)
    assert {'retain_primary_context', 'memcpy_htod_async', 'pagelocked_empty',
            '__int__'} <= fake_names(FAKE_DRIVER)


def test_every_name_the_runtime_takes_from_tensorrt_or_pycuda_is_faked():
    assert runtime_names('tensorrt') - fake_names(FAKE_TENSORRT) == set()
    assert runtime_names('pycuda.driver') - fake_names(FAKE_DRIVER) == set()


def test_every_tensorrt_name_in_use_exists_in_tensorrt_10_3():
    used = runtime_names('tensorrt') | fake_names(FAKE_TENSORRT)
    assert missing_in_tensorrt(used) == []


def test_every_pycuda_name_in_use_exists_in_pycuda():
    used = runtime_names('pycuda.driver') | fake_names(FAKE_DRIVER)
    assert missing_in_pycuda(used) == []


def test_every_polygraphy_class_method_and_keyword_in_use_exists_in_polygraphy():
    assert set(polygraphy_uses()) == {'CreateConfig', 'EngineBytesFromNetwork',
                                      'NetworkFromOnnxPath', 'Profile'}
    assert missing_in_polygraphy(polygraphy_uses()) == []
    assert missing_in_polygraphy(fake_polygraphy()) == []


@pytest.mark.parametrize('name', REMOVED_IN_TENSORRT_10)
def test_a_name_removed_in_tensorrt_10_is_reported_missing(name):
    used = runtime_names('tensorrt') | fake_names(FAKE_TENSORRT)
    assert missing_in_tensorrt(used | {name}) == [name]


def test_names_pycuda_does_not_have_are_reported_missing():
    assert missing_in_pycuda({'init', 'make_primary_context', 'autoinit'}) == [
        'autoinit', 'make_primary_context']


def test_polygraphy_names_it_does_not_have_are_reported_missing():
    assert missing_in_polygraphy({
        'CreateConfig': (set(), {'fp16', 'max_workspace_size'}),
        'Profile': ({'add', 'add_shape'}, set()),
        'EngineFromBytesAndMagic': (set(), set())}) == [
        'CreateConfig(max_workspace_size=)', 'EngineFromBytesAndMagic', 'Profile.add_shape']
