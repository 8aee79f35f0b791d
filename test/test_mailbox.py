"""The one-slot mailbox keeps the newest frame and reports every overwrite."""

import threading

from gps_denied_inference.mailbox import FrameMailbox


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


def test_close_wakes_a_waiting_taker_and_discards():
    box = FrameMailbox()
    result = []
    taker = threading.Thread(target=lambda: result.append(box.take(10.0)))
    taker.start()
    box.close()
    taker.join(5.0)
    assert not taker.is_alive() and result == [None]
    box.put('late')
    assert box.take(0.0) is None and box.closed


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
