"""transition_refusal against rclpy's own transition descriptions."""

from gps_denied_inference.node.lifecycle_guard import transition_refusal

GRAPH = [(1, 'configure', 1, 'unconfigured', 10, 'configuring'),
         (3, 'activate', 2, 'inactive', 13, 'activating'),
         (5, 'shutdown', 1, 'unconfigured', 12, 'shuttingdown')]
FROM_UNCONFIGURED = [GRAPH[0], GRAPH[2]]


def test_an_available_transition_is_allowed():
    assert transition_refusal(1, (1, 'unconfigured'), FROM_UNCONFIGURED, GRAPH) is None


def test_a_transition_of_another_state_is_refused_naming_it_and_the_valid_ones():
    refusal = transition_refusal(3, (1, 'unconfigured'), FROM_UNCONFIGURED, GRAPH)
    assert refusal == ("transition activate (3) is not valid in state 'unconfigured'; "
                       'valid there: configure (1), shutdown (5)')


def test_an_unknown_transition_id_is_refused():
    refusal = transition_refusal(99, (1, 'unconfigured'), FROM_UNCONFIGURED, GRAPH)
    assert refusal.startswith('transition unknown transition id 99 (99) is not valid')
