"""INT8 calibration trust, and batches through the model's own preprocessing contract.

The cache is reused only when both sidecars agree, refused when damaged (and then never
touched), rebuilt when the dataset changed; batches reach the device through the calibrator.
"""

import hashlib
import logging

import cv2
from fakes import gpu
import numpy as np
import pytest

from gps_denied_inference.compiler.build_config import CalibrationConfig
from gps_denied_inference.compiler.calibration import (
    cache_dataset_path,
    cache_sha256_path,
    CalibrationSource,
    dataset_images,
    dataset_sha256,
    decide_cache,
    make_entropy_calibrator,
    tensorrt_cache_version,
    write_trusted_cache,
)
from gps_denied_inference.errors import CalibrationCacheError
from gps_denied_inference.imaging.contract import PreprocessContract

CACHE = b'TRT-100300-EntropyCalibration2\nimage: 3c010a14\n'
DIGEST = 'a' * 64
TRT_VERSION = '10.3.0'


def make_dataset(directory, count=4, size=(24, 20), channels=1, seed=3):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = size if channels == 1 else (*size, channels)
    for index in range(count):
        cv2.imwrite(str(directory / f'frame{index:03d}.png'),
                    rng.integers(0, 256, shape, dtype=np.uint8))
    return directory


def snapshot(cache):
    return {p.name: p.read_bytes() for p in (cache, cache_sha256_path(cache),
                                             cache_dataset_path(cache)) if p.exists()}


# -- the dataset -----------------------------------------------------------------------------

def test_the_dataset_hash_follows_content_and_names_not_order_or_other_files(tmp_path):
    data = make_dataset(tmp_path / 'calib')
    (data / 'notes.txt').write_text('not an image')
    first = dataset_sha256(data, dataset_images(data))
    assert [p.name for p in dataset_images(data)] == [f'frame{i:03d}.png' for i in range(4)]
    (data / 'notes.txt').write_text('edited')
    assert dataset_sha256(data, dataset_images(data)) == first
    (data / 'frame001.png').rename(data / 'frame009.png')
    renamed = dataset_sha256(data, dataset_images(data))
    assert renamed != first
    cv2.imwrite(str(data / 'frame000.png'), np.zeros((24, 20), np.uint8))
    assert dataset_sha256(data, dataset_images(data)) not in (first, renamed)


def test_images_in_subdirectories_count_too(tmp_path):
    data = make_dataset(tmp_path / 'calib' / 'flight1', count=2)
    make_dataset(tmp_path / 'calib' / 'flight2', count=1)
    assert len(dataset_images(data.parent)) == 3


@pytest.mark.parametrize('make', ['empty', 'missing', 'no images'])
def test_an_empty_or_missing_dataset_is_refused(tmp_path, make):
    data = tmp_path / 'calib'
    if make != 'missing':
        data.mkdir()
    if make == 'no images':
        (data / 'readme.md').write_text('x')
    with pytest.raises(CalibrationCacheError, match=str(data)):
        dataset_images(data)


# -- cache trust -----------------------------------------------------------------------------

def test_no_cache_means_calibrate(tmp_path):
    decision = decide_cache(tmp_path / 'model.calib', DIGEST, TRT_VERSION)
    assert not decision.reuse and decision.data is None and 'calibrating' in decision.reason


def test_a_sealed_cache_of_this_dataset_is_reused(tmp_path):
    cache = tmp_path / 'sub' / 'model.calib'
    write_trusted_cache(cache, CACHE, DIGEST)
    assert cache_sha256_path(cache).read_text() == (
        f'{hashlib.sha256(CACHE).hexdigest()}  model.calib\n')
    assert cache_dataset_path(cache).read_text() == f'{DIGEST}\n'
    decision = decide_cache(cache, DIGEST, TRT_VERSION)
    assert decision.reuse and decision.data == CACHE


def test_a_changed_dataset_rebuilds_the_cache_with_a_warning_not_an_error(tmp_path, caplog):
    cache = tmp_path / 'model.calib'
    write_trusted_cache(cache, CACHE, DIGEST)
    before = snapshot(cache)
    with caplog.at_level(logging.WARNING, logger='gps_denied_inference.compiler.calibration'):
        decision = decide_cache(cache, 'b' * 64, TRT_VERSION)
    assert not decision.reuse and 'dataset changed' in decision.reason
    assert any('calibrating again' in r.getMessage() for r in caplog.records)
    assert snapshot(cache) == before  # deciding touches nothing


def damage(cache, how):
    if how == 'cache bytes':
        cache.write_bytes(CACHE + b'x')
    elif how == 'sha256 malformed':
        cache_sha256_path(cache).write_text('not a digest\n')
    elif how == 'sha256 of another file':
        cache_sha256_path(cache).write_text(
            f'{hashlib.sha256(CACHE).hexdigest()}  other.calib\n')
    elif how == 'dataset malformed':
        cache_dataset_path(cache).write_text('A' * 64 + '\n')
    elif how == 'dataset two lines':
        cache_dataset_path(cache).write_text(f'{DIGEST}\n{DIGEST}\n')
    elif how == 'no sha256':
        cache_sha256_path(cache).unlink()
    elif how == 'no dataset sidecar':
        cache_dataset_path(cache).unlink()
    elif how == 'sidecars without cache':
        cache.unlink()


@pytest.mark.parametrize('how,message', [
    ('cache bytes', 'corrupt'),
    ('sha256 malformed', 'malformed'),
    ('sha256 of another file', 'another file'),
    ('dataset malformed', 'malformed'),
    ('dataset two lines', 'malformed'),
    ('no sha256', 'incomplete'),
    ('no dataset sidecar', 'incomplete'),
    ('sidecars without cache', 'incomplete'),
])
def test_a_damaged_cache_is_refused_and_left_exactly_as_it_was(tmp_path, how, message):
    cache = tmp_path / 'model.calib'
    write_trusted_cache(cache, CACHE, DIGEST)
    damage(cache, how)
    before = snapshot(cache)
    with pytest.raises(CalibrationCacheError, match=message):
        decide_cache(cache, DIGEST, TRT_VERSION)
    assert snapshot(cache) == before


def test_a_cache_without_any_sidecar_is_not_trusted(tmp_path):
    cache = tmp_path / 'model.calib'
    cache.write_bytes(CACHE)
    with pytest.raises(CalibrationCacheError, match='neither used nor overwritten'):
        decide_cache(cache, DIGEST, TRT_VERSION)
    assert cache.read_bytes() == CACHE


# -- batches through the contract ------------------------------------------------------------

def source_for(tmp_path, contract, count=5, channels=1, **calibration):
    data = make_dataset(tmp_path / 'calib', count=count, channels=channels)
    config = CalibrationConfig(str(data), str(tmp_path / 'model.calib'), **calibration)
    return CalibrationSource(config, contract, (-1,) + contract.input_shape[1:],
                             TRT_VERSION)


@pytest.mark.parametrize('contract,channels', [
    (PreprocessContract(width=16, height=12), 1),
    (PreprocessContract(width=16, height=12, color='rgb', layout='NHWC'), 3),
    (PreprocessContract(width=8, height=8, color='bgr', dtype='float16'), 1),
    (PreprocessContract(width=10, height=10, dtype='uint8', scale=1.0), 3),
])
def test_batches_are_images_through_the_models_contract(tmp_path, contract, channels):
    source = source_for(tmp_path, contract, channels=channels, batch_size=2)
    batches = list(source.batches())
    assert len(batches) == source.batch_count == 2  # 5 images: the fifth fills no batch
    from gps_denied_inference.compiler.calibration import load_image
    from gps_denied_inference.imaging.preprocess import preprocess
    expected = preprocess(load_image(source.images[2]), contract)[0]
    for batch in batches:
        assert batch.shape == (2,) + contract.input_shape[1:]
        assert batch.dtype == np.dtype(contract.dtype)
    assert np.array_equal(batches[1][0], expected)
    assert source.batch_nbytes == batches[0].nbytes


def test_max_batches_limits_the_batches(tmp_path):
    source = source_for(tmp_path, PreprocessContract(width=8, height=8), max_batches=2)
    assert len(list(source.batches())) == source.batch_count == 2


@pytest.mark.parametrize('input_shape,batch_size,message', [
    ((1, 3, 8, 8), 1, 'do not fit'),
    ((2, 1, 8, 8), 1, 'do not fit'),
    ((-1, 1, 8, 8), 9, 'fewer than one batch'),
])
def test_batches_that_cannot_feed_the_input_are_refused(tmp_path, input_shape, batch_size,
                                                        message):
    data = make_dataset(tmp_path / 'calib')
    config = CalibrationConfig(str(data), str(tmp_path / 'c'), batch_size=batch_size)
    with pytest.raises(CalibrationCacheError, match=message):
        CalibrationSource(config, PreprocessContract(width=8, height=8), input_shape,
                          TRT_VERSION)


# -- the TensorRT-facing calibrator ----------------------------------------------------------

@pytest.fixture
def fake():
    with gpu.installed() as device:
        yield device


def calibrator_for(source):
    import pycuda.driver as cuda
    import tensorrt as trt
    return trt, cuda, make_entropy_calibrator(trt, cuda, source)


def test_the_calibrator_copies_each_batch_to_the_device_and_seals_the_cache(tmp_path, fake):
    source = source_for(tmp_path, PreprocessContract(width=8, height=8), count=3)
    trt, cuda, calibrator = calibrator_for(source)
    assert isinstance(calibrator, trt.IInt8EntropyCalibrator2)
    assert calibrator.get_batch_size() == 1 and calibrator.read_calibration_cache() is None
    fake.stack().append('context')
    expected = list(source.batches())
    for batch in expected:
        pointer, = calibrator.get_batch(['image'])
        block, offset = fake.find(pointer)
        assert bytes(block[offset:offset + batch.nbytes]) == batch.tobytes()
    assert calibrator.get_batch(['image']) is None
    assert fake.events('cuda.mem_alloc') == ['cuda.mem_alloc']  # one buffer, reused
    calibrator.write_calibration_cache(CACHE)
    assert calibrator.error is None
    assert decide_cache(tmp_path / 'model.calib', source.dataset_sha256, TRT_VERSION).data == CACHE
    calibrator.release()
    calibrator.release()
    assert fake.live_allocations == 0


def test_a_calibrator_error_ends_calibration_and_no_cache_is_written(tmp_path, fake):
    source = source_for(tmp_path, PreprocessContract(width=8, height=8), count=3)
    (tmp_path / 'calib' / 'frame001.png').write_bytes(b'broken')
    _, _, calibrator = calibrator_for(source)
    fake.stack().append('context')
    assert calibrator.get_batch(['image']) is not None
    assert calibrator.get_batch(['image']) is None
    assert isinstance(calibrator.error, CalibrationCacheError)
    assert 'frame001.png' in str(calibrator.error)
    calibrator.write_calibration_cache(CACHE)
    assert not (tmp_path / 'model.calib').exists()
    calibrator.release()


def test_a_calibration_cut_short_is_never_sealed(tmp_path, fake):
    source = source_for(tmp_path, PreprocessContract(width=8, height=8), count=3)
    _, _, calibrator = calibrator_for(source)
    fake.stack().append('context')
    calibrator.get_batch(['image'])
    calibrator.write_calibration_cache(CACHE)
    assert 'used 1 of 3 batches' in str(calibrator.error)
    assert not (tmp_path / 'model.calib').exists()
    calibrator.release()


def test_a_reused_cache_is_not_rewritten(tmp_path, fake):
    contract = PreprocessContract(width=8, height=8)
    first = source_for(tmp_path, contract, count=2)
    write_trusted_cache(first.config.cache, CACHE, first.dataset_sha256)
    source = CalibrationSource(first.config, contract, (1, 1, 8, 8), TRT_VERSION)
    _, _, calibrator = calibrator_for(source)
    assert calibrator.read_calibration_cache() == CACHE
    stamp = (tmp_path / 'model.calib').stat().st_mtime_ns
    calibrator.write_calibration_cache(CACHE)
    assert (tmp_path / 'model.calib').stat().st_mtime_ns == stamp and calibrator.error is None


@pytest.mark.parametrize('first_line,version,reason', [
    (b'TRT-8601-EntropyCalibration2', '10.3.0', 'written by TensorRT 8601'),
    (b'TRT-100300-EntropyCalibration2', '10.3.1', 'this is TensorRT 10.3.1 (100301)'),
    (b'TRT-100300-EntropyCalibration2', None, 'installed TensorRT version is unknown'),
    (b'TRT-100300-MinMaxCalibration', '10.3.0', 'is not TRT-<version>-EntropyCalibration2'),
    (b'not a cache', '10.3.0', 'is not TRT-<version>-EntropyCalibration2'),
])
def test_a_cache_from_another_tensorrt_is_never_trusted_but_calibrated_again(
        tmp_path, caplog, first_line, version, reason):
    cache = tmp_path / 'model.calib'
    write_trusted_cache(cache, first_line + b'\nimage: 3c010a14\n', DIGEST)
    with caplog.at_level(logging.WARNING, logger='gps_denied_inference.compiler.calibration'):
        decision = decide_cache(cache, DIGEST, version)
    assert not decision.reuse and decision.data is None
    assert reason in decision.reason and 'calibrating again' in decision.reason
    assert 'not trusted' in caplog.text


def test_the_cache_version_number_follows_tensorrt_encoding():
    assert tensorrt_cache_version('10.3.0') == '100300'
    assert tensorrt_cache_version('10.3.0.26') == '100300'
    assert tensorrt_cache_version('8.6.1') == '8601'
