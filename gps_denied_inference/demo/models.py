"""Demo and benchmark models built with onnx.helper: no hub downloads, nothing opaque.

`build_corner_detector` is a Harris corner detector written as a CNN; `build_superpoint_like`
a SuperPoint-sized network with seeded random weights, for benchmarks. Both take `image`
float32 [1, 1, H, W] in [0, 1] and end in a top-K selection inside the graph: `keypoints`
[1, K, 3] rows (x, y, score) in model-input pixels, strongest first, zero rows padding, and
`descriptors` [1, K, C] of each keypoint's 8x8 cell. A TensorRT build needs K <= 3840.
`build_superpoint_dense` is the same network exported without the selection: its outputs are
SuperPoint's dense heads `semi` [1, 65, H/8, W/8] and `desc` [1, 256, H/8, W/8] (6.2 MB per
640x480 frame), as flight engineers bring their models.
"""

from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import manifest_from_onnx, seal_artifact
from gps_denied_inference.errors import ConfigError
from gps_denied_inference.imaging.contract import PreprocessContract

OPSET = 17
IR_VERSION = 8  # the IR version released with opset 17: loads in older ONNX Runtimes too
CELL = 8
HARRIS_K = 0.04
# Harris response below this is not a corner. With Sobel/8 gradients of a [0, 1] image, a
# full-contrast corner scores ~1e-3 and a 10%-contrast one ~1e-7; sensor noise well below.
HARRIS_THRESHOLD = 1e-6
NMS_KERNEL = 5
GAUSSIAN_SIZE = 5
GAUSSIAN_SIGMA = 1.0
# A 10%-contrast edge crossing a cell pools to ~1e-2; float rounding on a flat cell, ~1e-9.
DESCRIPTOR_NORM_FLOOR = 1e-3
SUPERPOINT_ENCODER = (64, 64, 64, 64, 128, 128, 128, 128)
SUPERPOINT_HEAD = 256
SUPERPOINT_DESCRIPTOR = 256
MAX_KEYPOINTS = 1024
OUTPUT_NAMES = ('keypoints', 'descriptors')
DENSE_OUTPUT_NAMES = ('semi', 'desc')
# Pixel coordinates are derived from the flat top-K index in float32, exact below 2^24 pixels.
MAX_PIXELS = 2 ** 24 - 1

PathLike = Union[str, Path]


def demo_contract(height: int, width: int) -> PreprocessContract:
    """What both demo models expect: mono, stretched, scaled to [0, 1], NCHW float32."""
    return PreprocessContract(width=width, height=height, color='mono', resize='stretch',
                              mean=(0.0,), std=(1.0,), scale=1.0 / 255.0, layout='NCHW',
                              dtype='float32')


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(height: int, width: int, max_keypoints: int) -> int:
    """Refuse sizes the graph cannot handle; returns K, the number of keypoint rows."""
    for name, value in (('height', height), ('width', width)):
        if not _is_int(value) or value < CELL * 2 or value % CELL:
            raise ConfigError(f'demo model {name} = {value!r} is invalid: must be a multiple '
                              f'of {CELL} and at least {CELL * 2}')
    if height * width > MAX_PIXELS:
        raise ConfigError(f'demo model size {height} x {width} is invalid: at most '
                          f'{MAX_PIXELS} pixels (keypoint coordinates are exact in float32)')
    if not _is_int(max_keypoints) or max_keypoints < 1:
        raise ConfigError(f'demo model max_keypoints = {max_keypoints!r} is invalid: must be '
                          'an integer >= 1')
    return min(max_keypoints, height * width)


class _Graph:
    """Collects nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: List[object] = []
        self.initializers: List[object] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: List[str], **attributes: object) -> str:
        return self.ops(op_type, inputs, 1, **attributes)[0]

    def ops(self, op_type: str, inputs: List[str], count: int,
            **attributes: object) -> List[str]:
        """A node with `count` outputs; returns their names."""
        from onnx import helper
        self._count += 1
        outputs = [f'{op_type.lower()}_{self._count}_{i}' for i in range(count)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, **attributes))
        return outputs

    def ints(self, *values: int) -> str:
        """An int64 constant (shapes, axes)."""
        self._count += 1
        return self.const(f'ints_{self._count}', np.array(values, dtype=np.int64))

    def scalar(self, value: float) -> str:
        """A float32 scalar constant."""
        self._count += 1
        return self.const(f'scalar_{self._count}', np.array(value, dtype=np.float32))

    def split(self, value: str, parts: int) -> List[str]:
        from onnx import helper
        self._count += 1
        outputs = [f'split_{self._count}_{i}' for i in range(parts)]
        sizes = self.const(f'split_sizes_{self._count}', np.ones(parts, dtype=np.int64))
        self.nodes.append(helper.make_node('Split', [value, sizes], outputs, axis=1))
        return outputs

    def rename(self, value: str, name: str) -> None:
        from onnx import helper
        self.nodes.append(helper.make_node('Identity', [value], [name]))

    def model(self, name: str, height: int, width: int,
              outputs: Dict[str, List[int]]) -> object:
        """The model with the `image` input and float32 `outputs` ({name: shape})."""
        from onnx import helper, TensorProto
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, height, width])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)
             for output, shape in outputs.items()],
            self.initializers)
        model = helper.make_model(graph, producer_name='gps_denied_inference.demo.models',
                                  opset_imports=[helper.make_opsetid('', OPSET)])
        model.ir_version = IR_VERSION
        return model


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    axis = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-axis ** 2 / (2.0 * sigma ** 2))
    kernel = np.outer(g, g)
    return (kernel / kernel.sum()).astype(np.float32)


def _gradient_kernels() -> np.ndarray:
    """[4, 1, 3, 3]: Sobel x, Sobel y and the two diagonals, scaled so a unit step gives 0.5."""
    gx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64) / 8.0
    gy = gx.T
    diagonals = [(gx + gy) / np.sqrt(2.0), (gx - gy) / np.sqrt(2.0)]
    return np.stack([gx, gy, *diagonals])[:, None].astype(np.float32)


def _nms(g: _Graph, score: str) -> str:
    """Keep a score only where it is the maximum of its NMS_KERNEL x NMS_KERNEL window."""
    pad = NMS_KERNEL // 2
    peak = g.op('MaxPool', [score], kernel_shape=[NMS_KERNEL, NMS_KERNEL],
                pads=[pad, pad, pad, pad], strides=[1, 1])
    is_max = g.op('Cast', [g.op('Equal', [score, peak])], to=1)  # 1 = FLOAT
    return g.op('Mul', [score, is_max])


def _sparse_outputs(g: _Graph, scores: str, cell_descriptors: str, height: int, width: int,
                    keypoints: int, channels: int) -> None:
    """`keypoints` and `descriptors` (see the module docstring) from the dense maps.

    scores: [1, 1, H, W], zero except at kept maxima; cell_descriptors: [1, H/8, W/8, C].
    Coordinates come from the flat index in float32 arithmetic, exact for the sizes
    _check_size allows, so the graph divides no integers.
    """
    values, indices = g.ops('TopK', [g.op('Reshape', [scores, g.ints(1, height * width)]),
                                     g.ints(keypoints)], 2, axis=1, largest=1, sorted=1)
    index = g.op('Cast', [indices], to=1)  # 1 = FLOAT
    y = g.op('Floor', [g.op('Div', [index, g.scalar(width)])])
    x = g.op('Sub', [index, g.op('Mul', [y, g.scalar(width)])])
    found = g.op('Unsqueeze', [g.op('Cast', [g.op('Greater', [values, g.scalar(0.0)])], to=1),
                               g.ints(2)])
    rows = g.op('Concat', [g.op('Unsqueeze', [column, g.ints(2)]) for column in (x, y, values)],
                axis=2)
    g.rename(g.op('Mul', [rows, found]), 'keypoints')
    cell_y = g.op('Floor', [g.op('Div', [y, g.scalar(CELL)])])
    cell_x = g.op('Floor', [g.op('Div', [x, g.scalar(CELL)])])
    cell = g.op('Add', [g.op('Mul', [cell_y, g.scalar(width // CELL)]), cell_x])
    cell_index = g.op('Reshape', [g.op('Cast', [cell], to=7), g.ints(keypoints)])  # 7 = INT64
    table = g.op('Reshape', [cell_descriptors,
                             g.ints(height // CELL * (width // CELL), channels)])
    gathered = g.op('Unsqueeze', [g.op('Gather', [table, cell_index], axis=0), g.ints(0)])
    g.rename(g.op('Mul', [gathered, found]), 'descriptors')


def _l2_normalise_channels_last(g: _Graph, features: str) -> str:
    """[1, C, h, w] -> [1, h, w, C], each cell divided by max(its L2 norm, a floor).

    The floor keeps a flat cell (rounding-level gradients) near zero instead of blowing its
    noise up to a unit vector; any cell with real texture comes out with norm 1.
    """
    norm = g.op('Sqrt', [g.op('ReduceSumSquare', [features], axes=[1], keepdims=1)])
    floor = g.const(f'{features}_norm_floor', np.array(DESCRIPTOR_NORM_FLOOR, np.float32))
    return g.op('Transpose', [g.op('Div', [features, g.op('Max', [norm, floor])])],
                perm=[0, 2, 3, 1])


def build_corner_detector(height: int = 480, width: int = 640,
                          max_keypoints: int = MAX_KEYPOINTS) -> object:
    """The Harris corner detector as an ONNX CNN (see the module docstring)."""
    keypoints = _check_size(height, width, max_keypoints)
    g = _Graph()
    reflect1 = g.const('pads_1', np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))
    reflect2 = g.const('pads_2', np.array([0, 0, 2, 2, 0, 0, 2, 2], dtype=np.int64))
    # Reflect padding: the image border is not an edge, so it makes no corners.
    padded = g.op('Pad', ['image', reflect1], mode='reflect')
    grads = g.op('Conv', [padded, g.const('gradient_kernels', _gradient_kernels())])
    ix, iy, _, _ = g.split(grads, 4)
    products = g.op('Concat', [g.op('Mul', [ix, ix]), g.op('Mul', [iy, iy]),
                               g.op('Mul', [ix, iy])], axis=1)
    window = np.repeat(_gaussian_kernel(GAUSSIAN_SIZE, GAUSSIAN_SIGMA)[None, None], 3, axis=0)
    structure = g.op('Conv', [g.op('Pad', [products, reflect2], mode='reflect'),
                              g.const('gaussian_window', window)], group=3)
    sxx, syy, sxy = g.split(structure, 3)
    det = g.op('Sub', [g.op('Mul', [sxx, syy]), g.op('Mul', [sxy, sxy])])
    trace = g.op('Add', [sxx, syy])
    k = g.const('harris_k', np.array(HARRIS_K, dtype=np.float32))
    response = g.op('Sub', [det, g.op('Mul', [k, g.op('Mul', [trace, trace])])])
    threshold = g.const('harris_threshold', np.array(HARRIS_THRESHOLD, dtype=np.float32))
    corners = g.op('Relu', [g.op('Sub', [response, threshold])])
    scores = _nms(g, corners)
    # Descriptor: an 8-bin oriented-gradient histogram per cell (each of the four
    # directions split into its positive and negative part), L2-normalised.
    bins = g.op('Concat', [g.op('Relu', [grads]), g.op('Relu', [g.op('Neg', [grads])])],
                axis=1)
    cells = g.op('AveragePool', [bins], kernel_shape=[CELL, CELL], strides=[CELL, CELL])
    descriptors = _l2_normalise_channels_last(g, cells)
    _sparse_outputs(g, scores, descriptors, height, width, keypoints, 8)
    return g.model('harris_corner_detector', height, width, _sparse_shapes(keypoints, 8))


def _sparse_shapes(keypoints: int, channels: int) -> Dict[str, List[int]]:
    return {'keypoints': [1, keypoints, 3], 'descriptors': [1, keypoints, channels]}


def _conv(g: _Graph, x: str, rng: np.random.Generator, name: str, c_in: int, c_out: int,
          kernel: int, relu: bool = True) -> str:
    """A convolution with He-normal weights (seeded), 'same' padding, optional ReLU."""
    fan_in = c_in * kernel * kernel
    weight = rng.normal(0.0, np.sqrt(2.0 / fan_in), (c_out, c_in, kernel, kernel))
    bias = rng.normal(0.0, 0.01, c_out)
    pad = kernel // 2
    y = g.op('Conv', [x, g.const(f'{name}.weight', weight.astype(np.float32)),
                      g.const(f'{name}.bias', bias.astype(np.float32))],
             kernel_shape=[kernel, kernel], pads=[pad, pad, pad, pad])
    return g.op('Relu', [y]) if relu else y


def _superpoint_heads(g: _Graph, seed: int) -> Tuple[str, str, int]:
    """SuperPoint's encoder and its two heads' last convolutions: (logits, descriptors, C).

    VGG-style encoder (8 3x3 convolutions, 64-64-64-64-128-128-128-128, max-pool after every
    pair but the last); detector head 3x3 conv to 256 then 1x1 to 65 (64 cell positions +
    "no keypoint"); descriptor head 3x3 conv to 256 then 1x1 to 256. He-normal weights from
    `seed`.
    """
    rng = np.random.default_rng(seed)
    x, c_in = 'image', 1
    for index, c_out in enumerate(SUPERPOINT_ENCODER):
        x = _conv(g, x, rng, f'encoder{index}', c_in, c_out, 3)
        c_in = c_out
        if index % 2 == 1 and index < len(SUPERPOINT_ENCODER) - 1:
            x = g.op('MaxPool', [x], kernel_shape=[2, 2], strides=[2, 2])
    detector = _conv(g, x, rng, 'detector0', c_in, SUPERPOINT_HEAD, 3)
    logits = _conv(g, detector, rng, 'detector1', SUPERPOINT_HEAD, CELL * CELL + 1, 1,
                   relu=False)
    descriptor = _conv(g, x, rng, 'descriptor0', c_in, SUPERPOINT_HEAD, 3)
    descriptor = _conv(g, descriptor, rng, 'descriptor1', SUPERPOINT_HEAD,
                       SUPERPOINT_DESCRIPTOR, 1, relu=False)
    return logits, descriptor, SUPERPOINT_DESCRIPTOR


def build_superpoint_like(height: int = 480, width: int = 640, seed: int = 0,
                          max_keypoints: int = MAX_KEYPOINTS) -> object:
    """SuperPoint's architecture with seeded random weights: a realistic benchmark load.

    The encoder and heads of `_superpoint_heads`; the detector logits go through a softmax,
    depth-to-space to full resolution and NMS, the descriptors are L2-normalised per cell;
    then the same top-K selection as the corner detector.
    """
    keypoints = _check_size(height, width, max_keypoints)
    g = _Graph()
    logits, descriptor, channels = _superpoint_heads(g, seed)
    probabilities = g.op('Softmax', [logits], axis=1)
    cells = g.op('Slice', [probabilities, g.const('slice_start', np.array([0], np.int64)),
                           g.const('slice_end', np.array([CELL * CELL], np.int64)),
                           g.const('slice_axis', np.array([1], np.int64))])
    heatmap = g.op('DepthToSpace', [cells], blocksize=CELL, mode='DCR')
    scores = _nms(g, heatmap)
    _sparse_outputs(g, scores, _l2_normalise_channels_last(g, descriptor), height, width,
                    keypoints, channels)
    return g.model('superpoint_like', height, width, _sparse_shapes(keypoints, channels))


def build_superpoint_dense(height: int = 480, width: int = 640, seed: int = 0) -> object:
    """SuperPoint's network with its dense heads as outputs: `semi` and `desc` (see above).

    The same encoder, heads and weights as `build_superpoint_like` with the same seed; no
    softmax, NMS or selection in the graph, as SuperPoint is commonly exported.
    """
    _check_size(height, width, 1)
    g = _Graph()
    logits, descriptor, channels = _superpoint_heads(g, seed)
    norm = g.op('Sqrt', [g.op('ReduceSumSquare', [descriptor], axes=[1], keepdims=1)])
    floor = g.const('desc_norm_floor', np.array(DESCRIPTOR_NORM_FLOOR, np.float32))
    g.rename(logits, 'semi')
    g.rename(g.op('Div', [descriptor, g.op('Max', [norm, floor])]), 'desc')
    cells = [height // CELL, width // CELL]
    return g.model('superpoint_dense', height, width,
                   {'semi': [1, CELL * CELL + 1, *cells], 'desc': [1, channels, *cells]})


def write_demo_model(out: PathLike, *, height: int = 480, width: int = 640,
                     superpoint: bool = False, seed: int = 0,
                     max_keypoints: int = MAX_KEYPOINTS, dense: bool = False) -> Manifest:
    """Build, check, save and seal a demo model; returns the sealed manifest.

    `dense` builds `build_superpoint_dense` (`superpoint` and `max_keypoints` do not apply).
    """
    import onnx

    if dense:
        model = build_superpoint_dense(height, width, seed)
    elif superpoint:
        model = build_superpoint_like(height, width, seed, max_keypoints)
    else:
        model = build_corner_detector(height, width, max_keypoints)
    onnx.checker.check_model(model, full_check=True)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f'.{path.name}.tmp')
    onnx.save(model, str(temp))
    temp.replace(path)
    kind = ('superpoint_dense' if dense else 'superpoint_like' if superpoint
            else 'harris_corner_detector')
    extra: Dict[str, object] = {'model': kind}
    if not dense:
        extra['max_keypoints'] = max_keypoints
    if superpoint or dense:
        extra['seed'] = seed
    manifest = manifest_from_onnx(path, preprocess=vars(demo_contract(height, width)),
                                  extra=extra)
    return seal_artifact(path, manifest)

