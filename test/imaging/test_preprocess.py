import cv2
import numpy as np
import pytest

from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.imaging.decode import decode_image, DecodedImage
from gps_denied_inference.imaging.preprocess import plan_resize, preprocess

# encoding -> (channels, dtype, colour as decode_image reports it)
SOURCES = {
    'mono8': (1, np.uint8, 'mono'), 'mono16': (1, np.uint16, 'mono'),
    'rgb8': (3, np.uint8, 'rgb'), 'bgr8': (3, np.uint8, 'bgr'),
    'rgba8': (4, np.uint8, 'rgba'), 'bgra8': (4, np.uint8, 'bgra'),
}
TO_GRAY = {'rgb': cv2.COLOR_RGB2GRAY, 'bgr': cv2.COLOR_BGR2GRAY, 'rgba': cv2.COLOR_RGBA2GRAY,
           'bgra': cv2.COLOR_BGRA2GRAY}
# Where each colour keeps red, green, blue.
RGB_INDEX = {'rgb': [0, 1, 2], 'bgr': [2, 1, 0], 'rgba': [0, 1, 2], 'bgra': [2, 1, 0]}


def source_image(encoding, height, width, padding=0, seed=0):
    """A decoded random image whose rows carry `padding` extra bytes, as a camera sends."""
    channels, dtype, _ = SOURCES[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype)
    rows = pixels.reshape(height, -1).view(np.uint8)
    padding += padding % np.dtype(dtype).itemsize
    data = np.hstack([rows, np.zeros((height, padding), np.uint8)]).tobytes()
    return decode_image(encoding, height, width, rows.shape[1] + padding, 0, data), pixels


def reference(pixels, color, contract):
    """The contract spelled out step by step in float64, no shortcuts."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if contract.color == 'mono':
        if color != 'mono':
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), TO_GRAY[color])
        pixels = pixels[..., None]
    elif color == 'mono':
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    else:
        order = RGB_INDEX[color] if contract.color == 'rgb' else RGB_INDEX[color][::-1]
        pixels = np.ascontiguousarray(pixels[..., order])
    src_h, src_w = pixels.shape[:2]
    if contract.resize == 'letterbox':
        scale = min(contract.width / src_w, contract.height / src_h)
        content = (int(src_w * scale + 0.5), int(src_h * scale + 0.5))
    else:
        content = (contract.width, contract.height)
    if content != (src_w, src_h) and (src_w, src_h) == (1, 1):
        pixels = np.broadcast_to(pixels, (content[1], content[0], pixels.shape[2]))
    elif content != (src_w, src_h):
        shrink = content[0] <= src_w and content[1] <= src_h
        pixels = cv2.resize(pixels, content,
                            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        pixels = pixels.reshape(content[1], content[0], -1)
    canvas = np.full((contract.height, contract.width, contract.channels), contract.pad_value,
                     np.float64)
    top, left = (contract.height - content[1]) // 2, (contract.width - content[0]) // 2
    canvas[top:top + content[1], left:left + content[0]] = pixels
    if contract.dtype != 'uint8':
        canvas = (canvas * contract.scale - np.array(contract.mean)) / np.array(contract.std)
    tensor = canvas.astype(contract.dtype)[None]
    return tensor.transpose(0, 3, 1, 2) if contract.layout == 'NCHW' else tensor


GEOMETRIES = {
    # (source height, width, model height, width)
    'same': (24, 32, 24, 32),
    'shrink': (48, 64, 20, 30),
    'grow': (12, 16, 30, 36),
    'mixed': (40, 10, 20, 30),
    # OpenCV 4.5.4 (JetPack's) refuses to swap the channels of a 1x1 image in cvtColor.
    'pixel': (1, 1, 1, 1),
    'pixel_grown': (1, 1, 3, 5),
}


@pytest.mark.parametrize('encoding', sorted(SOURCES))
@pytest.mark.parametrize('color', ['mono', 'rgb', 'bgr'])
@pytest.mark.parametrize('layout,dtype', [('NCHW', 'float32'), ('NHWC', 'float32'),
                                          ('NCHW', 'float16'), ('NHWC', 'uint8')])
@pytest.mark.parametrize('resize', ['stretch', 'letterbox'])
@pytest.mark.parametrize('geometry', sorted(GEOMETRIES))
def test_every_branch_matches_the_reference(encoding, color, layout, dtype, resize, geometry):
    src_h, src_w, height, width = GEOMETRIES[geometry]
    channels = 1 if color == 'mono' else 3
    contract = PreprocessContract(width=width, height=height, color=color, resize=resize,
                                  mean=(0.2, 0.5, 0.7)[:channels], std=(0.3,),
                                  scale=1.0 / 255.0, layout=layout, dtype=dtype, pad_value=114)
    image, pixels = source_image(encoding, src_h, src_w, padding=3)

    tensor = preprocess(image, contract)

    assert tensor.shape == contract.input_shape
    assert tensor.dtype == np.dtype(dtype)
    assert tensor.flags.c_contiguous
    np.testing.assert_array_equal(tensor, reference(pixels, image.color, contract))


@pytest.mark.parametrize('encoding', ['mono8', 'rgb8', 'bgra8'])
def test_identity_when_size_and_colour_match_and_dtype_is_uint8(encoding):
    image, pixels = source_image(encoding, 9, 11, padding=5)
    color = 'mono' if image.color == 'mono' else 'rgb'
    contract = PreprocessContract(width=11, height=9, color=color, layout='NHWC',
                                  dtype='uint8', mean=(0.0,), std=(1.0,))
    expected = pixels if pixels.ndim == 3 else pixels[..., None]
    if encoding == 'bgra8':
        expected = expected[..., [2, 1, 0]]
    assert plan_resize(9, 11, contract).interpolation is None
    np.testing.assert_array_equal(preprocess(image, contract)[0], expected)


def test_mono16_keeps_the_high_byte():
    values = np.array([[0x0000, 0x00FF, 0x0100, 0xABCD, 0xFFFF]], np.uint16)
    image = decode_image('mono16', 1, 5, 10, 0, values.astype('<u2').tobytes())
    contract = PreprocessContract(width=5, height=1, dtype='uint8')
    assert preprocess(image, contract).ravel().tolist() == [0x00, 0x00, 0x01, 0xAB, 0xFF]


def test_big_endian_mono16_preprocesses_like_little_endian():
    values = np.random.default_rng(1).integers(0, 65536, (6, 7), np.uint16)
    big = decode_image('mono16', 6, 7, 14, 1, values.astype('>u2').tobytes())
    little = decode_image('mono16', 6, 7, 14, 0, values.astype('<u2').tobytes())
    contract = PreprocessContract(width=4, height=3)
    np.testing.assert_array_equal(preprocess(big, contract), preprocess(little, contract))


def test_normalisation_uses_scale_mean_and_std_per_channel():
    pixels = np.array([[[0, 128, 255]]], np.uint8)
    image = DecodedImage(pixels, 'rgb', 8)
    contract = PreprocessContract(width=1, height=1, color='rgb', mean=(0.5, 0.25, 1.0),
                                  std=(0.5, 2.0, 4.0), scale=1.0 / 255.0)
    expected = [(0 / 255 - 0.5) / 0.5, (128 / 255 - 0.25) / 2.0, (255 / 255 - 1.0) / 4.0]
    np.testing.assert_allclose(preprocess(image, contract).ravel(), expected, rtol=1e-6)


def test_the_input_image_is_not_modified():
    image, pixels = source_image('bgra8', 10, 12)
    before = image.pixels.copy()
    preprocess(image, PreprocessContract(width=5, height=7, color='rgb', resize='letterbox'))
    np.testing.assert_array_equal(image.pixels, before)


def test_each_call_returns_a_new_tensor():
    image, _ = source_image('mono8', 8, 8)
    contract = PreprocessContract(width=8, height=8)
    first = preprocess(image, contract)
    second = preprocess(image, contract)
    assert not np.shares_memory(first, second)


@pytest.mark.parametrize('src,model,content,pad', [
    # (src h, w), (model h, w), (content h, w), (pad y, x)
    ((480, 640), (416, 416), (312, 416), (52, 0)),
    ((480, 640), (640, 640), (480, 640), (80, 0)),
    ((640, 480), (416, 416), (416, 312), (0, 52)),
    ((100, 200), (100, 100), (50, 100), (25, 0)),
    ((100, 100), (64, 32), (32, 32), (16, 0)),
    ((30, 40), (70, 81), (61, 81), (4, 0)),
    ((1, 1000), (100, 100), (1, 100), (49, 0)),
    ((480, 640), (480, 640), (480, 640), (0, 0)),
])
def test_letterbox_geometry(src, model, content, pad):
    contract = PreprocessContract(width=model[1], height=model[0], resize='letterbox')
    plan = plan_resize(src[0], src[1], contract)
    assert (plan.content_height, plan.content_width) == content
    assert (plan.pad_y, plan.pad_x) == pad


@pytest.mark.parametrize('src,model,interpolation', [
    ((48, 64), (24, 32), cv2.INTER_AREA),
    ((48, 64), (48, 32), cv2.INTER_AREA),
    ((48, 64), (96, 128), cv2.INTER_LINEAR),
    ((48, 64), (24, 128), cv2.INTER_LINEAR),
    ((48, 64), (48, 64), None),
])
def test_interpolation_is_area_when_shrinking_linear_when_growing(src, model, interpolation):
    contract = PreprocessContract(width=model[1], height=model[0])
    assert plan_resize(src[0], src[1], contract).interpolation == interpolation


def test_letterbox_border_holds_the_normalised_pad_value():
    image, _ = source_image('rgb8', 10, 40)
    contract = PreprocessContract(width=20, height=20, color='rgb', resize='letterbox',
                                  pad_value=114, mean=(0.5,), std=(0.25,))
    tensor = preprocess(image, contract)
    plan = plan_resize(10, 40, contract)
    border = (114 / 255 - 0.5) / 0.25
    assert (plan.pad_y, plan.content_height, plan.pad_x, plan.content_width) == (7, 5, 0, 20)
    np.testing.assert_allclose(tensor[0, :, :7], border, rtol=1e-6)
    np.testing.assert_allclose(tensor[0, :, 12:], border, rtol=1e-6)
    assert np.count_nonzero(np.isclose(tensor[0, :, 7:12], border)) < 3 * 5 * 20 // 10


def test_a_keypoint_maps_back_to_the_source_pixel():
    pixels = np.zeros((100, 200), np.uint8)
    pixels[60:62, 40:42] = 255
    contract = PreprocessContract(width=100, height=100, resize='letterbox', dtype='uint8')
    tensor = preprocess(DecodedImage(pixels, 'mono', 8), contract)[0, 0]
    y, x = np.unravel_index(np.argmax(tensor), tensor.shape)

    plan = plan_resize(100, 200, contract)

    assert (x, y) == (20, 55)
    assert plan.to_source(x, y) == (40.5, 60.5)


@pytest.mark.parametrize('resize', ['stretch', 'letterbox'])
@pytest.mark.parametrize('src', [(480, 640), (37, 1001), (720, 1280)])
def test_to_model_inverts_to_source(resize, src):
    plan = plan_resize(src[0], src[1], PreprocessContract(width=416, height=320, resize=resize))
    for point in [(0.0, 0.0), (12.5, 300.25), (415.0, 319.0)]:
        np.testing.assert_allclose(plan.to_model(*plan.to_source(*point)), point, atol=1e-9)


def test_stretch_maps_the_corners_of_the_image_onto_each_other():
    plan = plan_resize(480, 640, PreprocessContract(width=320, height=120))
    assert plan.to_source(-0.5, -0.5) == (-0.5, -0.5)
    assert plan.to_source(319.5, 119.5) == (639.5, 479.5)


def test_a_given_plan_is_the_one_applied_and_one_for_another_size_is_refused():
    image, _ = source_image('mono8', 48, 64)
    contract = PreprocessContract(width=32, height=32, resize='letterbox')
    plan = plan_resize(48, 64, contract)
    assert (plan.model_width, plan.model_height) == (32, 32)
    np.testing.assert_array_equal(preprocess(image, contract, plan), preprocess(image, contract))
    with pytest.raises(ValueError, match='resize plan for 64 x 49 px'):
        preprocess(image, contract, plan_resize(49, 64, contract))
    with pytest.raises(ValueError, match='model input of 32 x 32 px'):
        preprocess(image, contract, plan_resize(48, 64, PreprocessContract(width=16, height=16)))
