"""The A/B's variants compute the same thing: the same bytes, the same frames flagged."""

import numpy as np
import pytest
from sensor_msgs.msg import Image

from gps_denied_inference.bench import publish_cost


def outputs():
    rng = np.random.default_rng(0)
    return {'semi': rng.standard_normal((1, 65, 3, 4)).astype(np.float32),
            'desc': rng.standard_normal((1, 256, 3, 4)).astype(np.float32)}


def test_both_encodings_carry_the_tensors_bytes_in_the_same_layout():
    frame = outputs()
    before = publish_cost.old_encode(frame)
    after = publish_cost.new_encoder(Image)(frame)
    for old, new, tensor in zip(before, after, frame.values()):
        assert bytes(old.data) == bytes(new.data) == tensor.tobytes()
        assert (old.height, old.width, old.encoding, old.step) == (
            new.height, new.width, new.encoding, new.step)


@pytest.mark.parametrize('bad', [None, np.nan, np.inf, -np.inf])
def test_both_checks_flag_the_same_frames(bad):
    frame = outputs()
    if bad is not None:
        frame['desc'][0, 7, 1, 2] = bad
    assert publish_cost.old_check(frame) == publish_cost.sum_check(frame) == (bad is not None)


def test_fresh_outputs_are_new_memory_with_the_same_values():
    frame = outputs()
    copy = publish_cost.fresh(frame)
    for name in frame:
        assert not np.shares_memory(copy[name], frame[name])
        np.testing.assert_array_equal(copy[name], frame[name])
