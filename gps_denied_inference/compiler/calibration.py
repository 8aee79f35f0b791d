"""INT8 calibration you can trust: images through the model's own contract, a sealed cache.

A calibration cache holds the INT8 scale of every tensor; a cache from other images, or a
damaged one, silently ruins accuracy. So a cache is reused only when both sidecars agree:
`<cache>.sha256` (`sha256sum` line: the file is intact) and `<cache>.dataset_sha256` (the
content hash of the dataset it was computed from). A dataset that changed rebuilds the cache
(logged, not an error). A cache without sidecars, sidecars without a cache, a malformed
sidecar, a cache whose bytes disagree with its digest, or an empty dataset raise
CalibrationCacheError, and the cache is left exactly as it was for a person to look at.

The TensorRT-facing calibrator (`IInt8EntropyCalibrator2`) is made by
`make_entropy_calibrator`, which takes the already-imported tensorrt and pycuda.driver
modules, so this module imports neither.
"""

from dataclasses import dataclass
import hashlib
import logging
from pathlib import Path
import re
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from gps_denied_inference.artifacts.sealing import (
    format_sha256_line,
    read_sha256_sidecar,
    sha256_file,
    write_atomically,
)
from gps_denied_inference.compiler.build_config import CalibrationConfig
from gps_denied_inference.errors import CalibrationCacheError, ManifestError
from gps_denied_inference.imaging.contract import PreprocessContract

_LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.pgm', '.ppm', '.tif', '.tiff')
DATASET_SUFFIX = '.dataset_sha256'
SHA256_SUFFIX = '.sha256'
MAX_SIDECAR_BYTES = 4096
_DIGEST_LINE = re.compile(r'^([0-9a-f]{64})\n?$')
_CACHE_HEADER = re.compile(r'^TRT-(\d+)-EntropyCalibration2$')

PathLike = Union[str, Path]


@dataclass(frozen=True)
class CacheDecision:
    """Whether an existing cache is reused (its bytes) or calibration runs, and why."""

    reuse: bool
    reason: str
    data: Optional[bytes] = None


def cache_sha256_path(cache: PathLike) -> Path:
    """'<cache>.sha256': the cache file's integrity sidecar."""
    return Path(str(cache) + SHA256_SUFFIX)


def cache_dataset_path(cache: PathLike) -> Path:
    """'<cache>.dataset_sha256': the content hash of the dataset the cache came from."""
    return Path(str(cache) + DATASET_SUFFIX)


def dataset_images(dataset_dir: PathLike) -> List[Path]:
    """Every image file under the directory, sorted; an empty or missing dataset is refused."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise CalibrationCacheError(f'calibration dataset {root} is not a directory')
    images = sorted(p for p in root.rglob('*')
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise CalibrationCacheError(f'calibration dataset {root} holds no images (looked for '
                                    f'{", ".join(IMAGE_SUFFIXES)})')
    return images


def dataset_sha256(dataset_dir: PathLike, images: Sequence[Path]) -> str:
    """Content hash of a dataset: each image's relative path and sha256, in sorted order."""
    root = Path(dataset_dir)
    digest = hashlib.sha256()
    for image in images:
        digest.update(f'{image.relative_to(root).as_posix()}\0{sha256_file(image)}\n'
                      .encode('utf-8'))
    return digest.hexdigest()


def cache_header_problem(data: bytes, tensorrt_version: Optional[str]) -> Optional[str]:
    """Why a cache's first line ('TRT-<version>-EntropyCalibration2') rules it out, or None.

    TensorRT writes its version there as NV_TENSORRT_VERSION: major*10000 + minor*100 + patch
    from 10.0 on (100300 for 10.3.0), major*1000 + minor*100 + patch before (8601). An
    unknown installed version, an unreadable line or another version all rule it out.
    """
    line = data.split(b'\n', 1)[0].decode('ascii', errors='replace').strip()
    match = _CACHE_HEADER.match(line)
    if match is None:
        return f'its first line {line[:60]!r} is not TRT-<version>-EntropyCalibration2'
    if tensorrt_version is None:
        return 'the installed TensorRT version is unknown'
    expected = tensorrt_cache_version(tensorrt_version)
    if match.group(1) != expected:
        return (f'it was written by TensorRT {match.group(1)}, this is TensorRT '
                f'{tensorrt_version} ({expected})')
    return None


def tensorrt_cache_version(version: str) -> str:
    """'10.3.0' -> '100300', '8.6.1' -> '8601': the number a calibration cache names."""
    major, minor, patch = (int(part) for part in (version.split('.') + ['0', '0'])[:3])
    scale = 10000 if major >= 10 else 1000
    return str(major * scale + minor * 100 + patch)


def decide_cache(cache: PathLike, dataset_digest: str,
                 tensorrt_version: Optional[str] = None) -> CacheDecision:
    """Reuse, rebuild, or refuse (CalibrationCacheError) an existing calibration cache.

    A cache from another TensorRT (its first line) is treated like one from another dataset:
    never trusted, calibrated again, logged.
    """
    path = Path(cache)
    integrity, dataset = cache_sha256_path(path), cache_dataset_path(path)
    present = {p.name for p in (path, integrity, dataset) if p.exists()}
    if not present:
        return CacheDecision(False, f'no calibration cache at {path}: calibrating')
    missing = [p.name for p in (path, integrity, dataset) if p.name not in present]
    if missing:
        raise CalibrationCacheError(
            f'calibration cache {path} is incomplete: {", ".join(missing)} missing beside '
            f'{", ".join(sorted(present))}; cannot tell what it was computed from, so it is '
            'neither used nor overwritten (remove all three to calibrate afresh)')
    try:
        expected, name = read_sha256_sidecar(integrity)
    except ManifestError as err:
        raise CalibrationCacheError(f'calibration cache sidecar {integrity} is malformed: '
                                    f'{err}') from err
    if name != path.name:
        raise CalibrationCacheError(f'{integrity} names {name!r}, expected {path.name!r}: the '
                                    'sidecar belongs to another file')
    recorded = read_dataset_sidecar(dataset)
    data = _read_bytes(path)
    found = hashlib.sha256(data).hexdigest()
    if found != expected:
        raise CalibrationCacheError(
            f'calibration cache {path} is corrupt: sha256 {found}, its sidecar says '
            f'{expected}; it is neither used nor overwritten')
    problem = cache_header_problem(data, tensorrt_version)
    if problem is not None:
        _LOG.warning('calibration cache %s is not trusted: %s; calibrating again', path,
                     problem)
        return CacheDecision(False, f'cache not from this TensorRT ({problem}): calibrating '
                                    'again')
    if recorded != dataset_digest:
        _LOG.warning('calibration cache %s was computed from dataset %s, the dataset is now '
                     '%s: calibrating again', path, recorded, dataset_digest)
        return CacheDecision(False, f'dataset changed (cache from {recorded[:12]}, dataset now '
                                    f'{dataset_digest[:12]}): calibrating again')
    return CacheDecision(True, f'reusing {path}: intact and computed from this dataset', data)


def read_dataset_sidecar(path: PathLike) -> str:
    """The dataset digest a `.dataset_sha256` sidecar records; CalibrationCacheError if bad."""
    raw = _read_bytes(Path(path), MAX_SIDECAR_BYTES + 1)
    match = None
    if len(raw) <= MAX_SIDECAR_BYTES:
        match = _DIGEST_LINE.match(raw.decode('ascii', errors='replace'))
    if match is None:
        raise CalibrationCacheError(f'dataset sidecar {path} is malformed: expected one line '
                                    f'of 64 lowercase hex digits, found {raw[:80]!r}')
    return match.group(1)


def write_trusted_cache(cache: PathLike, data: bytes, dataset_digest: str) -> None:
    """Write the cache and both sidecars atomically; the integrity sidecar goes last."""
    path = Path(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
    write_atomically(cache_dataset_path(path), f'{dataset_digest}\n'.encode('ascii'))
    digest = hashlib.sha256(data).hexdigest()
    write_atomically(cache_sha256_path(path),
                      format_sha256_line(digest, path.name).encode('utf-8'))


def load_image(path: Path) -> Any:
    """One calibration image as a DecodedImage (8- or 16-bit mono, BGR or BGRA)."""
    import cv2

    from gps_denied_inference.imaging.decode import DecodedImage

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise CalibrationCacheError(f'calibration image {path} cannot be decoded')
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(pixels.dtype)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    color = {1: 'mono', 3: 'bgr', 4: 'bgra'}.get(channels)
    if depth is None or color is None:
        raise CalibrationCacheError(f'calibration image {path} has {channels} channels of '
                                    f'{pixels.dtype}; expected 1, 3 or 4 of uint8/uint16')
    if pixels.ndim == 3 and channels == 1:
        pixels = pixels[:, :, 0]
    return DecodedImage(pixels=pixels, color=color, bit_depth=depth)


class CalibrationSource:
    """A dataset decided trustworthy: batches through the contract, and the cache policy."""

    def __init__(self, config: CalibrationConfig, contract: PreprocessContract,
                 input_shape: Tuple[int, ...], tensorrt_version: Optional[str] = None) -> None:
        self.config = config
        self.contract = contract
        self.images = dataset_images(config.dataset_dir)
        self.dataset_sha256 = dataset_sha256(config.dataset_dir, self.images)
        self.decision = decide_cache(config.cache, self.dataset_sha256, tensorrt_version)
        self.batch_shape = (config.batch_size,) + tuple(contract.input_shape[1:])
        if tuple(input_shape[1:]) != self.batch_shape[1:] or input_shape[0] not in (
                -1, config.batch_size):
            raise CalibrationCacheError(
                f'calibration batches {self.batch_shape} (batch_size {config.batch_size}, '
                f'preprocessing contract {contract.input_shape}) do not fit the model input '
                f'{tuple(input_shape)}')
        if len(self.images) < config.batch_size:
            raise CalibrationCacheError(
                f'calibration dataset {config.dataset_dir} has {len(self.images)} images, fewer '
                f'than one batch of {config.batch_size}')

    @property
    def batch_nbytes(self) -> int:
        """Bytes of one batch in the contract's dtype."""
        return int(np.prod(self.batch_shape)) * np.dtype(self.contract.dtype).itemsize

    @property
    def batch_count(self) -> int:
        """Full batches the dataset yields (at most max_batches)."""
        count = len(self.images) // self.config.batch_size
        if self.config.max_batches is not None:
            count = min(count, self.config.max_batches)
        return count

    def batches(self) -> Iterator[np.ndarray]:
        """Full batches, images read lazily; a partial last batch is dropped (logged)."""
        from gps_denied_inference.imaging.preprocess import preprocess

        size = self.config.batch_size
        count = self.batch_count
        if len(self.images) % size:
            _LOG.info('calibration: the last %d images do not fill a batch of %d and are '
                      'not used', len(self.images) % size, size)
        for index in range(count):
            batch = np.empty(self.batch_shape, dtype=self.contract.dtype)
            for slot, image in enumerate(self.images[index * size:(index + 1) * size]):
                batch[slot] = preprocess(load_image(image), self.contract)[0]
            yield batch

    def read_cache(self) -> Optional[bytes]:
        """The trusted cache's bytes when reused, else None (TensorRT then calibrates)."""
        return self.decision.data if self.decision.reuse else None

    def write_cache(self, data: bytes) -> None:
        """Seal what TensorRT computed; rewriting an identical reused cache is skipped."""
        if self.decision.reuse and data == self.decision.data:
            return
        write_trusted_cache(self.config.cache, data, self.dataset_sha256)
        _LOG.info('calibration cache written to %s (%d B, dataset %s)', self.config.cache,
                  len(data), self.dataset_sha256)


def make_entropy_calibrator(trt: Any, cuda: Any, source: CalibrationSource) -> Any:
    """A trt.IInt8EntropyCalibrator2 feeding `source` through one device buffer.

    Implicit INT8 by calibration is deprecated since TensorRT 10.1 (the calibrator classes,
    `int8_calibrator`; `get_batch_size` since 10.0) and is still the only calibrated INT8 that
    10.3 offers; the build attaches it with the per-call warnings silenced and says so once.
    TensorRT calls these methods from C++, where a Python exception cannot travel; an error
    is kept in `.error` and ends calibration (get_batch returns None), and the caller
    raises it after the build.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Entropy calibration over the dataset; `release()` frees the device buffer."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.error: Optional[BaseException] = None
            self.batches_served = 0
            self._batches: Optional[Iterator[np.ndarray]] = None
            self._device: Any = None

        def get_batch_size(self) -> int:
            return source.config.batch_size

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            try:
                if self._batches is None:
                    self._batches = source.batches()
                batch = next(self._batches, None)
                if batch is None:
                    return None
                if self._device is None:
                    self._device = cuda.mem_alloc(source.batch_nbytes)
                cuda.memcpy_htod(self._device, np.ascontiguousarray(batch))
                self.batches_served += 1
                return [int(self._device)]
            except Exception as err:  # noqa: B902 - kept for the caller, see the docstring
                self.error = err
                return None

        def read_calibration_cache(self) -> Optional[bytes]:
            return source.read_cache()

        def write_calibration_cache(self, cache: Any) -> None:
            if self.error is not None:
                return  # scales from part of the dataset must never be sealed as its cache
            if not source.decision.reuse and self.batches_served != source.batch_count:
                self.error = CalibrationCacheError(
                    f'calibration used {self.batches_served} of {source.batch_count} batches; '
                    f'the cache {source.config.cache} was not written')
                return
            try:
                source.write_cache(bytes(cache))
            except Exception as err:  # noqa: B902 - kept for the caller, see the docstring
                self.error = err

        def release(self) -> None:
            if self._device is not None:
                self._device.free()
                self._device = None

    return EntropyCalibrator()


def _read_bytes(path: Path, limit: int = -1) -> bytes:
    try:
        with open(path, 'rb') as stream:
            return stream.read(limit)
    except OSError as err:
        raise CalibrationCacheError(f'{path}: cannot read: {err}') from err


