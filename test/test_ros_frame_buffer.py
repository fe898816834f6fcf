"""The node's frame hand-off (pure threading, no ROS): newest frame wins, commands first, stamps kept."""

from __future__ import annotations

import threading

import pytest

from segtrack_ros.frame_buffer import FrameRing, Mailbox


def test_newest_frame_wins_and_replaced_frames_count_as_dropped():
    mailbox = Mailbox()
    for frame in ("a", "b", "c"):
        mailbox.put_frame(frame)
    assert mailbox.take(timeout=0) == (None, "c")
    assert (mailbox.received, mailbox.dropped) == (3, 2)
    assert mailbox.take(timeout=0.01) == (None, None)  # nothing queued up behind it
    mailbox.put_frame("d")
    assert mailbox.take(timeout=0) == (None, "d") and mailbox.dropped == 2


def test_commands_are_served_in_order_before_frames():
    mailbox = Mailbox()
    mailbox.put_frame("frame")
    first, second = mailbox.submit(lambda: 1), mailbox.submit(lambda: 2)
    (command, future), frame = mailbox.take(timeout=0)
    assert frame is None and future is first and command() == 1
    (command, future), _ = mailbox.take(timeout=0)
    assert future is second
    assert mailbox.take(timeout=0) == (None, "frame")


def test_a_waiting_worker_wakes_up_for_a_frame():
    mailbox = Mailbox()
    got = []
    worker = threading.Thread(target=lambda: got.append(mailbox.take(timeout=5)))
    worker.start()
    mailbox.put_frame("x")
    worker.join(5)
    assert got == [(None, "x")]


def test_close_fails_pending_and_later_commands():
    mailbox = Mailbox()
    pending = mailbox.submit(lambda: 1)
    mailbox.close()
    assert mailbox.closed and mailbox.take(timeout=0) == (None, None)
    with pytest.raises(RuntimeError, match="stopped"):
        pending.result(timeout=1)
    with pytest.raises(RuntimeError, match="stopped"):
        mailbox.submit(lambda: 2).result(timeout=1)


def test_ring_keeps_the_last_frames_by_stamp():
    ring = FrameRing(3, 1000)
    assert ring.newest_first() == [] and ring.stamp_range() is None
    for stamp in (10, 20, 30, 40):
        ring.append(stamp, f"f{stamp}", 1)
    assert ring.newest_first() == [(40, "f40"), (30, "f30"), (20, "f20")]
    assert ring.find(20) == "f20" and ring.find(10) is None and ring.find(25) is None
    assert ring.stamp_range() == (20, 40) and ring.usage() == (3, 3)
    with pytest.raises(ValueError):
        FrameRing(0, 1000)
    with pytest.raises(ValueError):
        FrameRing(3, 0)


def test_ring_is_bounded_by_bytes_and_always_keeps_the_newest():
    ring = FrameRing(30, 100)
    for stamp in range(5):
        ring.append(stamp, stamp, 40)
    assert ring.usage() == (2, 80) and [s for s, _ in ring.newest_first()] == [4, 3]
    ring.append(5, 5, 250)  # larger than the bound on its own: kept alone
    assert ring.usage() == (1, 250) and ring.find(5) == 5
    ring.append(6, 6, 10)
    assert ring.usage() == (1, 10)
    ring.clear()
    assert ring.usage() == (0, 0)
