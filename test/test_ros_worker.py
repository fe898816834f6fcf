"""segtrack_ros.worker without ROS: the tracking thread's commands, frames, stamp checks and counters."""

from __future__ import annotations

import threading
import time
from typing import NamedTuple, Optional

import numpy as np
import pytest

from segtrack_core import create_tracker
from segtrack_core.errors import InvalidFrameError, InvalidTargetError
from segtrack_core.trackers.base import Tracker
from segtrack_core.types import Box, TrackResult, TrackState
from segtrack_ros.frame_buffer import FrameRing
from segtrack_ros.worker import STAMP_JUMP_NS, TargetRequestError, TrackingWorker

SHAPE = (48, 64)
S = 1_000_000_000


class Frame(NamedTuple):
    """Frame ``index`` as an image whose pixels all hold the index; ``bad`` frames fail to convert."""

    stamp_ns: int
    index: int = 0
    bad: bool = False
    received_ns: int = 0
    nbytes: int = 10

    def to_bgr(self) -> np.ndarray:
        if self.bad:
            raise InvalidFrameError("broken frame")
        return np.full(SHAPE + (3,), self.index, np.uint8)


class FakeTracker(Tracker):
    """Reports its target box and the index of the frame it tracked (in score) and remembers the index of
    the frame it was initialised on; a box 13 px wide is refused, frame index 99 raises an unexpected
    error, ``gate`` (when set) holds each track call and ``prepare_gate`` each preparation."""

    def __init__(self) -> None:
        super().__init__()
        self.box: Optional[Box] = None
        self.init_index: Optional[int] = None
        self.gate: Optional[threading.Event] = None
        self.prepare_gate: Optional[threading.Event] = None
        self.tracking = threading.Event()
        self.preparing = threading.Event()

    def _initialize(self, frame, target):
        self.preparing.set()
        if self.prepare_gate is not None:
            assert self.prepare_gate.wait(10)
        if target.w == 13:
            raise InvalidTargetError("13 px is refused")
        return target, int(frame[0, 0, 0])

    def _adopt(self, state) -> None:
        self.box, self.init_index = state

    def _track(self, frame) -> TrackResult:
        self.tracking.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        index = int(frame[0, 0, 0])
        if index == 99:
            raise RuntimeError("tracker bug")
        return TrackResult(np.zeros(SHAPE, bool), float(index), self.box, None, TrackState.TRACKING)


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, message: str, **kwargs) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str, **kwargs) -> None:
        self.lines.append(("error", message))


class Harness:
    """A started worker around ``tracker`` with a clock at ``now`` ns; records what it publishes."""

    def __init__(self, tracker: Tracker, now: int = 1000 * S) -> None:
        self.now = now
        self.published: list = []
        self.outputs_open = True
        self.log = Log()
        self._cond = threading.Condition()
        self.worker = TrackingWorker(tracker, FrameRing(5, 1 << 20), self._publish, lambda: self.now, self.log)
        self.worker.start("camera")

    def _publish(self, tracked) -> Optional[float]:
        if not self.outputs_open:
            return None
        with self._cond:
            self.published.append(tracked)
            self._cond.notify_all()
        return 1.0

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.published), timeout)

    def feed(self, *frames: Frame) -> None:
        """Put each frame and wait until the worker took it (so none replaces another in the mailbox)."""
        for frame in frames:
            assert self.worker.put_frame(frame)
            deadline = time.monotonic() + 5
            while self.worker._mailbox._frame is not None and time.monotonic() < deadline:
                time.sleep(0.001)

    def settle(self) -> None:
        """Wait until everything queued before this was served (a command runs after earlier work)."""
        self.worker.set_enabled(self.worker.enabled).result(5)


@pytest.fixture
def harness():
    h = Harness(FakeTracker())
    yield h
    h.worker.stop(5)


def scores(published) -> list[float]:
    return [t.result.score for t in published]


def test_set_target_uses_the_stamped_frame_then_tracks_each_newer_frame(harness):
    worker = harness.worker
    harness.feed(Frame(100 * S, index=1))
    assert worker.set_target(Box(1, 2, 20, 10), stamp_ns=100 * S).result(5) == 1
    harness.feed(Frame(101 * S, index=2), Frame(102 * S, index=3))
    assert harness.wait_for(lambda p: len(p) == 2)
    assert scores(harness.published) == [2.0, 3.0]
    assert [t.target_id for t in harness.published] == [1, 1]
    assert worker.tracker.box == Box(1, 2, 20, 10)
    report = worker.report()
    assert report.values["frames_processed"] == "2" and report.values["state"] == "tracking" and not report.warn


def test_set_target_errors_name_what_is_missing(harness):
    with pytest.raises(TargetRequestError, match="no image received yet on camera"):
        harness.worker.set_target(Box(1, 2, 20, 10)).result(5)
    harness.feed(Frame(100 * S, index=1))
    with pytest.raises(TargetRequestError, match=r"no buffered frame has stamp 5 ns \(buffered stamps span"):
        harness.worker.set_target(Box(1, 2, 20, 10), stamp_ns=5).result(5)


def test_set_target_without_stamp_skips_a_broken_newest_frame(harness):
    harness.feed(Frame(100 * S, index=7), Frame(101 * S, bad=True))
    harness.worker.set_target(Box(1, 2, 20, 10)).result(5)
    assert harness.worker.tracker.init_index == 7


def test_the_current_target_is_tracked_while_a_new_one_is_prepared(harness):
    worker, tracker = harness.worker, harness.worker.tracker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    tracker.prepare_gate, tracker.preparing = threading.Event(), threading.Event()
    harness.feed(Frame(101 * S, index=2))
    second = worker.set_target(Box(3, 4, 20, 10), stamp_ns=101 * S)
    reset = worker.reset()  # arrives after the set_target: served after it
    assert tracker.preparing.wait(5)
    harness.feed(Frame(102 * S, index=3), Frame(103 * S, index=4))
    assert harness.wait_for(lambda p: len(p) == 3)
    assert not second.done() and not reset.done()
    assert [(t.frame.index, t.target_id, t.result.box) for t in harness.published] == [
        (2, 1, Box(1, 2, 20, 10)), (3, 1, Box(1, 2, 20, 10)), (4, 1, Box(1, 2, 20, 10))]
    tracker.prepare_gate.set()
    assert second.result(5) == 2 and tracker.box == Box(3, 4, 20, 10) and tracker.init_index == 2
    reset.result(5)
    assert not tracker.initialized


def test_commands_after_a_failed_preparation_are_served_in_order(harness):
    worker, tracker = harness.worker, harness.worker.tracker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    tracker.prepare_gate = threading.Event()
    refused = worker.set_target(Box(1, 2, 13, 10))
    third = worker.set_target(Box(5, 6, 20, 10))
    tracker.prepare_gate.set()
    with pytest.raises(InvalidTargetError, match="13 px"):
        refused.result(5)
    assert third.result(5) == 2 and tracker.box == Box(5, 6, 20, 10)


def test_stopping_fails_a_set_target_still_being_prepared(harness):
    worker, tracker = harness.worker, harness.worker.tracker
    harness.feed(Frame(100 * S, index=1))
    tracker.prepare_gate = threading.Event()
    pending = worker.set_target(Box(1, 2, 20, 10))
    assert tracker.preparing.wait(5)
    assert worker.stop(5)
    tracker.prepare_gate.set()
    with pytest.raises(RuntimeError, match="stopped"):
        pending.result(5)


def test_a_failing_set_target_keeps_the_old_target(harness):
    worker = harness.worker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    with pytest.raises(InvalidTargetError, match="13 px"):
        worker.set_target(Box(1, 2, 13, 10)).result(5)
    with pytest.raises(InvalidTargetError):  # outside the image: refused by the core's validation
        worker.set_target(Box(500, 500, 20, 10)).result(5)
    harness.feed(Frame(101 * S, index=2))
    assert harness.wait_for(lambda p: len(p) == 1)
    assert harness.published[0].target_id == 1 and worker.tracker.box == Box(1, 2, 20, 10)


def test_reset_and_disable_stop_outputs_until_undone(harness):
    worker = harness.worker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    worker.reset().result(5)
    assert worker.report().values["state"] == "no target"
    harness.feed(Frame(101 * S, index=2))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    worker.set_enabled(False).result(5)
    harness.feed(Frame(102 * S, index=3))
    harness.settle()
    assert harness.published == [] and worker.report().values["state"] == "disabled"
    worker.set_enabled(True).result(5)
    harness.feed(Frame(103 * S, index=4))
    assert harness.wait_for(lambda p: len(p) == 1) and scores(harness.published) == [4.0]


def test_a_bad_frame_is_counted_and_tracking_goes_on(harness):
    worker = harness.worker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    harness.feed(Frame(101 * S, bad=True), Frame(102 * S, index=99), Frame(103 * S, index=4))
    assert harness.wait_for(lambda p: len(p) == 1)
    worker.count_bad_frame()  # one the node could not even parse
    assert scores(harness.published) == [4.0]
    assert worker.report().values["bad_frames"] == "2"
    assert ("warning", "dropping a bad image: broken frame") in harness.log.lines
    assert any(level == "error" and "tracker bug" in text for level, text in harness.log.lines)


def test_a_frame_of_another_size_reports_the_target_lost(harness):
    worker = harness.worker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)

    class Larger(Frame):
        def to_bgr(self) -> np.ndarray:
            return np.zeros((SHAPE[0] * 2, SHAPE[1], 3), np.uint8)

    harness.feed(Larger(101 * S))
    assert harness.wait_for(lambda p: len(p) == 1)
    assert harness.published[0].result.state is TrackState.LOST and worker.report().warn


def test_stamp_checks(harness):
    worker = harness.worker
    harness.now = 100 * S
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    # Up to STAMP_JUMP_NS older than the target's frame: in flight when it was set, skipped. Older still:
    # a clock jump, tracked from then on (the next older frame too).
    harness.feed(Frame(100 * S - 1, index=2), Frame(100 * S - STAMP_JUMP_NS, index=3),
                 Frame(100 * S - STAMP_JUMP_NS - 1, index=4), Frame(90 * S, index=5))
    # Stamped 2 s ahead of the clock: tracked and counted.
    harness.feed(Frame(102 * S, index=6))
    assert harness.wait_for(lambda p: len(p) == 3)
    assert scores(harness.published) == [4.0, 5.0, 6.0]
    report = worker.report()
    assert [report.values[k] for k in ("out_of_order_frames", "stamp_jumps", "future_stamped_frames")] == \
        ["2", "1", "1"]
    assert report.warn and "image stamps jumped back" in report.message and "in the future" in report.message
    assert not worker.report().warn  # the warning lasts one report


def test_closed_outputs_count_nothing(harness):
    worker = harness.worker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    harness.outputs_open = False
    harness.feed(Frame(101 * S, index=2))
    harness.settle()
    assert worker.tracker.tracking.is_set()  # the frame was tracked; only its outputs were closed
    assert worker.report().values["frames_processed"] == "0"


def test_stop_joins_the_thread_and_fails_later_commands():
    harness = Harness(FakeTracker())
    worker, tracker = harness.worker, harness.worker.tracker
    harness.feed(Frame(100 * S, index=1))
    worker.set_target(Box(1, 2, 20, 10)).result(5)
    tracker.gate = threading.Event()
    harness.feed(Frame(101 * S, index=2))
    assert tracker.tracking.wait(5)
    pending = worker.reset()  # queued behind the frame in the tracker
    thread = worker._thread
    assert not worker.stop(0.2)  # still inside track(): not joined within the timeout
    with pytest.raises(RuntimeError, match="stopped"):
        pending.result(5)
    tracker.gate.set()
    thread.join(5)
    assert not thread.is_alive() and not worker.active
    assert worker.stop(1)  # stopping again is harmless
    assert not worker.put_frame(Frame(102 * S, index=3))
    with pytest.raises(RuntimeError, match="stopped"):
        worker.set_target(Box(1, 2, 20, 10)).result(5)
    assert worker.report().values["state"] == "inactive" and worker.report().warn
    # The tracker and its target survive a stop: a restarted worker goes on tracking.
    worker.start("camera")
    try:
        harness.feed(Frame(103 * S, index=3))
        assert harness.wait_for(lambda p: [t.frame.index for t in p][-1:] == [3])
    finally:
        assert worker.stop(5)


def test_a_real_tracker_follows_a_moving_square():
    tracker = create_tracker("csrt")
    harness = Harness(tracker)

    def square(x: int) -> np.ndarray:
        image = np.full((120, 160, 3), 40, np.uint8)
        image[40:70, x:x + 30] = (30, 200, 250)
        return image

    class Moving(NamedTuple):
        stamp_ns: int
        x: int
        received_ns: int = 0
        nbytes: int = 10

        def to_bgr(self) -> np.ndarray:
            return square(self.x)

    try:
        harness.feed(Moving(100 * S, 40))
        harness.worker.set_target(Box(40, 40, 30, 30)).result(10)
        harness.feed(*[Moving((101 + i) * S, 42 + 2 * i) for i in range(5)])
        assert harness.wait_for(lambda p: len(p) == 5, 30)
        box = harness.published[-1].result.box
        assert abs(box.x - 50) < 4 and abs(box.y - 40) < 4
    finally:
        assert harness.worker.stop(5)
