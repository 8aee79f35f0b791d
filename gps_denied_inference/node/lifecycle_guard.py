"""Which lifecycle requests the current state allows, decided before rclpy is asked (ROS-free).

Humble's rclpy (3.3.x) lets the RCLError of a transition that is invalid in the current state
escape the change_state service callback; the executor re-raises it and the process dies
without answering. A lifecycle manager configuring a node that autostarted, a duplicate or
stale request, or a hand-typed `ros2 service call` is enough. The node therefore checks every
request against the state machine's available transitions and refuses the invalid ones itself.
"""

from typing import Iterable, Optional, Sequence, Tuple

# rclpy's transition descriptions: (id, label, start id, start label, goal id, goal label).
TransitionDescription = Sequence[object]


def transition_refusal(transition_id: int, current: Tuple[int, str],
                       available: Iterable[TransitionDescription],
                       graph: Iterable[TransitionDescription]) -> Optional[str]:
    """Why `transition_id` cannot run from `current` (id, label); None when it can.

    `available` are the transitions leaving the current state, `graph` all transitions (only
    used to name the refused one).
    """
    allowed = {int(t[0]): str(t[1]) for t in available}
    if transition_id in allowed:
        return None
    known = {int(t[0]): str(t[1]) for t in graph}
    name = known.get(transition_id, f'unknown transition id {transition_id}')
    valid = ', '.join(f'{label} ({tid})' for tid, label in sorted(allowed.items())) or 'none'
    return (f'transition {name} ({transition_id}) is not valid in state {current[1]!r}; '
            f'valid there: {valid}')
