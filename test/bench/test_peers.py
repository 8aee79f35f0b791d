"""The bare subscriber's command line: each topic with the QoS of the side it stands for."""

import re

import pytest

from gps_denied_inference.bench import peers as bench_peers
from gps_denied_inference.bench.ros import CAMERA_QOS, OUTPUT_QOS


def test_topics_take_the_camera_or_the_output_qos():
    topics = bench_peers.parse_topics(['camera:/bench/floor/a', 'output:/bench/return/m/k'])
    assert topics == {'/bench/floor/a': 'camera', '/bench/return/m/k': 'output'}
    assert bench_peers.QOS_BY_NAME == {'camera': CAMERA_QOS, 'output': OUTPUT_QOS}


@pytest.mark.parametrize('spec', ['/bench/floor/a', 'reliable:/t', 'camera:'])
def test_a_topic_without_a_known_qos_is_refused_by_name(spec):
    with pytest.raises(ValueError, match=re.escape(repr(spec))):
        bench_peers.parse_topics([spec])


@pytest.mark.parametrize('argv', [[], ['out.json'], ['out.json', '/no/qos']])
def test_bad_command_lines_exit_2_before_any_ros(argv, capsys):
    assert bench_peers.main(argv) == 2
    assert 'bench_peers' in capsys.readouterr().err
