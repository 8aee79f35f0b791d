"""The one-slot mailbox keeps the newest frame and reports every overwrite."""

import threading
import time

from node_harness import wait_until

from gps_denied_inference.node.mailbox import FrameMailbox

WAIT_S = 30.0


def test_newest_frame_wins_and_overwrites_are_reported():
    box = FrameMailbox()
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.put(3) is True
    assert box.take(0.0) == 3
    assert box.take(0.0) is None


def test_take_waits_for_a_frame_from_another_thread():
    box = FrameMailbox()
    threading.Timer(0.05, box.put, args=('frame',)).start()
    assert box.take(5.0) == 'frame'


def test_clear_reports_a_pending_frame():
    box = FrameMailbox()
    assert box.clear() is False
    box.put('x')
    assert box.clear() is True
    assert box.take(0.0) is None


def test_pending_says_whether_a_frame_waits_to_be_taken():
    box = FrameMailbox()
    assert box.pending is False
    box.put('x')
    assert box.pending is True
    assert box.take(0.0) == 'x'
    assert box.pending is False
    box.put('y')
    box.clear()
    assert box.pending is False


def start_taker(box):
    """A thread blocked in take(None), once this returns; its frames land in the list."""
    taken = []
    taker = threading.Thread(target=lambda: taken.append(box.take(None)))
    taker.start()
    assert wait_until(lambda: box.taker_waiting, WAIT_S)
    return taker, taken


def test_put_hands_the_frame_to_a_waiting_taker_before_it_returns():
    box = FrameMailbox(handoff_timeout_s=WAIT_S)
    taker, taken = start_taker(box)
    assert box.put('frame') is False
    # Taken already: the putter gave up the GIL until the taker had it. Without the handoff
    # the frame would still be pending here, as this thread never let the taker run.
    assert box.pending is False
    taker.join(WAIT_S)
    assert taken == ['frame'] and box.taker_waiting is False


def test_without_a_handoff_timeout_put_leaves_the_frame_for_the_taker():
    box = FrameMailbox()
    taker, taken = start_taker(box)
    box.put('frame')
    assert box.pending is True
    taker.join(WAIT_S)
    assert taken == ['frame']


def test_put_with_no_taker_waiting_returns_at_once():
    box = FrameMailbox(handoff_timeout_s=WAIT_S)
    started = time.monotonic()
    box.put('frame')
    assert time.monotonic() - started < WAIT_S / 2
    assert box.pending is True and box.taker_waiting is False


def test_close_wakes_a_taker_waiting_without_a_timeout_and_discards():
    box = FrameMailbox()
    taker, taken = start_taker(box)
    box.close()
    taker.join(WAIT_S)
    assert not taker.is_alive() and taken == [None]
    box.put('late')
    assert box.take(0.0) is None and box.closed
