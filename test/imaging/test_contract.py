"""The preprocessing contract and its overrides refuse bad values and name the field."""

import dataclasses

import pytest

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.imaging.contract import PreprocessContract, PreprocessOverrides


@pytest.mark.parametrize('field,value', [
    ('width', 0), ('height', -3), ('color', 'yuv'), ('resize', 'crop'), ('layout', 'CHW'),
    ('dtype', 'float64'), ('mean', (0.1, 0.2)), ('std', (0.0,)), ('std', [1.0]),
    ('scale', 0.0), ('pad_value', 300),
])
def test_preprocess_contract_refuses_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        PreprocessContract(**{'width': 64, 'height': 48, field: value})


def test_preprocess_contract_shapes():
    mono = PreprocessContract(width=64, height=48)
    rgb = PreprocessContract(width=64, height=48, color='rgb', layout='NHWC',
                             mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert mono.input_shape == (1, 1, 48, 64)
    assert rgb.input_shape == (1, 48, 64, 3)


def test_overrides_apply_and_revalidate():
    base = PreprocessContract(width=64, height=48)
    assert PreprocessOverrides(width=32, resize='letterbox').apply(base) == dataclasses.replace(
        base, width=32, resize='letterbox')
    with pytest.raises(ConfigError, match='mean'):
        PreprocessOverrides(color='rgb', mean=(0.1, 0.2)).apply(base)
