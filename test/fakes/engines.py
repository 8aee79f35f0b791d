"""Build real sealed engines with the fake TensorRT, for tests that load or inspect them."""

from pathlib import Path
from typing import Any, Optional

from sealed_models import make_onnx

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.compiler.build_config import BuildConfig
from gps_denied_inference.compiler.engine_build import compile_engine

TRT = GateExpectation('tensorrt', None, '10.3.0', '8.7')


def make_dynamic_onnx(path: Path) -> Path:
    """`image` float32 [1, 1, H, W] (H, W dynamic) -> `doubled`, the image times 2."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    graph = helper.make_graph(
        [helper.make_node('Mul', ['image', 'two'], ['doubled'])], 'dynamic',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 'h', 'w'])],
        [helper.make_tensor_value_info('doubled', TensorProto.FLOAT, [1, 1, 'h', 'w'])],
        [numpy_helper.from_array(np.array(2.0, dtype=np.float32), 'two')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def build_engine(tmp_path: Path, name: str = 'model', *, dynamic: bool = False,
                 config: Optional[BuildConfig] = None, **fields: Any) -> Path:
    """Compile the tiny model with the (installed) fakes; returns the sealed engine path."""
    onnx_path = Path(tmp_path) / f'{name}.onnx'
    if dynamic:
        make_dynamic_onnx(onnx_path)
    else:
        make_onnx(onnx_path)
    out = Path(tmp_path) / f'{name}.engine'
    compile_engine(onnx_path, config or BuildConfig(**fields), output=out,
                   progress=lambda line: None)
    return out
