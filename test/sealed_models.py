"""Real sealed artifacts in a test's tmp_path, for any test that needs one to gate or load.

`make_sealed_onnx` writes a tiny ONNX model (`image` float32 [1, 1, H, W] -> `doubled`,
the image times 2) and seals it for the onnxruntime runtime; `make_sealed_spot_finder` one
that finds a single bright spot to a small fraction of a pixel (its intensity centroid).
`make_sealed_plan` writes a file with a TensorRT plan header (magic, version bytes) and
seals it as a TensorRT engine: enough for every gate check, never loadable by TensorRT.
"""

from dataclasses import replace
from pathlib import Path
from typing import Tuple

from gps_denied_inference.artifacts.gate import PLAN_MAGIC, PLAN_VERSION_OFFSET
from gps_denied_inference.artifacts.manifest import (
    DeviceInfo,
    Manifest,
    MemoryPrediction,
    TensorSpec,
)
from gps_denied_inference.artifacts.sealing import manifest_from_onnx, seal_artifact
from gps_denied_inference.imaging.contract import PreprocessContract


def make_onnx(path: Path, height: int = 16, width: int = 16) -> Path:
    """Write the tiny `image` -> `doubled` model (opset 17), unsealed."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    graph = helper.make_graph(
        [helper.make_node('Mul', ['image', 'two'], ['doubled'])], 'tiny',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, height, width])],
        [helper.make_tensor_value_info('doubled', TensorProto.FLOAT, [1, 1, height, width])],
        [numpy_helper.from_array(np.array(2.0, dtype=np.float32), 'two')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def make_sealed_onnx(tmp_path: Path, name: str = 'tiny.onnx', height: int = 16,
                     width: int = 16) -> Path:
    """A tiny ONNX model sealed for the onnxruntime runtime; returns its path."""
    path = make_onnx(Path(tmp_path) / name, height, width)
    seal_artifact(path, manifest_from_onnx(path))
    return path


def make_sealed_spot_finder(tmp_path: Path, height: int, width: int,
                            name: str = 'spot.onnx') -> Path:
    """`image` float32 [1, 1, H, W] -> `keypoints` [1, 1, 3]: one row (x, y, mass).

    x and y are the intensity centroid of the image in its pixels (centres at integers), so
    for one spot on a black background, its centre; mass is the image's sum. Sealed for
    onnxruntime with a mono, stretch, [0, 1] contract.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    axes = numpy_helper.from_array(np.array([2, 3], np.int64), 'axes')
    nodes = [
        helper.make_node('Mul', ['image', 'xs'], ['weighted_x']),
        helper.make_node('Mul', ['image', 'ys'], ['weighted_y']),
        helper.make_node('ReduceSum', ['image', 'axes'], ['mass']),
        helper.make_node('ReduceSum', ['weighted_x', 'axes'], ['sum_x']),
        helper.make_node('ReduceSum', ['weighted_y', 'axes'], ['sum_y']),
        helper.make_node('Div', ['sum_x', 'mass'], ['x']),
        helper.make_node('Div', ['sum_y', 'mass'], ['y']),
        helper.make_node('Concat', ['x', 'y', 'mass'], ['row'], axis=3),
        helper.make_node('Reshape', ['row', 'shape'], ['keypoints']),
    ]
    graph = helper.make_graph(
        nodes, 'spot_finder',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, height, width])],
        [helper.make_tensor_value_info('keypoints', TensorProto.FLOAT, [1, 1, 3])],
        [numpy_helper.from_array(xs[None, None], 'xs'),
         numpy_helper.from_array(ys[None, None], 'ys'), axes,
         numpy_helper.from_array(np.array([1, 1, 3], np.int64), 'shape')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    path = Path(tmp_path) / name
    onnx.save(model, str(path))
    contract = PreprocessContract(width=width, height=height, color='mono', resize='stretch')
    seal_artifact(path, manifest_from_onnx(path, preprocess=vars(contract)))
    return path


def plan_bytes(version: Tuple[int, int, int] = (10, 3, 0), size: int = 256) -> bytes:
    """Bytes that start like a TensorRT plan of `version` (magic, version at offset 24)."""
    data = bytearray((i * 7 + 3) % 251 for i in range(size))
    data[:len(PLAN_MAGIC)] = PLAN_MAGIC
    data[PLAN_VERSION_OFFSET:PLAN_VERSION_OFFSET + 3] = bytes(version)
    return bytes(data)


def plan_manifest(tensorrt_version: str = '10.3.0', compute_capability: str = '8.7',
                  **changes: object) -> Manifest:
    """A TensorRT manifest for a 480x640 mono model, unsealed."""
    manifest = Manifest(
        artifact_sha256='', runtime='tensorrt', runtime_version=tensorrt_version,
        device=DeviceInfo(name='Orin', compute_capability=compute_capability,
                          l4t_release='36.4.3', jetpack_release='6.2'),
        precision='fp16',
        tensors=(TensorSpec('image', 'input', 'float32', (1, 1, 480, 640)),
                 TensorSpec('keypoints', 'output', 'float32', (1, 1, 480, 640))),
        memory=MemoryPrediction(weights_bytes=256, activation_bytes=1 << 20,
                                io_buffer_bytes=2 * 4 * 480 * 640),
        preprocess=PreprocessContract(width=640, height=480),
        builder_flags=('fp16',))
    return replace(manifest, **changes)


def make_sealed_plan(tmp_path: Path, name: str = 'model.engine',
                     header_version: Tuple[int, int, int] = (10, 3, 0),
                     tensorrt_version: str = '10.3.0', compute_capability: str = '8.7') -> Path:
    """A file with a TensorRT plan header, sealed as a TensorRT engine; returns its path."""
    path = Path(tmp_path) / name
    path.write_bytes(plan_bytes(header_version))
    seal_artifact(path, plan_manifest(tensorrt_version, compute_capability))
    return path
