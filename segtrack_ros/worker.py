"""The node's tracking thread, without ROS (no rclpy, no message types: core values and plain callbacks).

Latency first: the image callback only parks the newest frame in a one-slot mailbox (a frame replaced
before the worker took it is dropped and counted), and this worker's own thread runs the tracker.
Commands that touch the tracker (set target, reset, enable) are queued to the same thread and served
in order before the next frame, so they never race it; each returns a future the caller may await.
A new target is prepared on a thread of its own while the current one is still tracked; it is adopted,
and the commands that came after it are served, once it is ready.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, NamedTuple, Optional, Protocol

import numpy as np

from segtrack_core import SegtrackError, TrackResult, TrackState
from segtrack_core.errors import InvalidFrameError
from segtrack_core.trackers.base import PreparedTarget, Tracker
from segtrack_core.types import Target

from .frame_buffer import FrameRing, Mailbox

LOG_THROTTLE_S = 5.0
# A frame older than the target's frame by more than this is a clock jump (clock reset, bag loop, a target
# set on a future-stamped frame), not a frame that was in flight when the target was set.
STAMP_JUMP_NS = 1_000_000_000
# Stamps further ahead of the clock than this are reported (unsynchronised camera clock).
FUTURE_STAMP_NS = 1_000_000_000


class Frame(Protocol):
    """A received image, converted only on the worker (segtrack_ros.frames)."""

    @property
    def stamp_ns(self) -> int: ...
    @property
    def received_ns(self) -> int: ...  # system time when the callback got it
    @property
    def nbytes(self) -> int: ...
    def to_bgr(self) -> np.ndarray: ...


class Log(Protocol):
    """A logger such as rclpy's (throttled per call site, hence one call site per message kind)."""

    def warning(self, message: str, **kwargs: Any) -> Any: ...
    def error(self, message: str, **kwargs: Any) -> Any: ...


class TargetRequestError(SegtrackError):
    """A set_target request cannot be served (no frame yet, unknown stamp)."""


class Tracked(NamedTuple):
    """One tracked frame, handed to the publish callback."""

    frame: Frame
    image: np.ndarray  # BGR
    result: TrackResult
    tracker_ms: float
    target_id: int


@dataclasses.dataclass
class Stats:
    """Counters for diagnostics; written by the worker, read through TrackingWorker.report."""

    processed: int = 0
    bad_frames: int = 0
    future_stamped: int = 0  # frames stamped more than FUTURE_STAMP_NS ahead of the clock
    stamp_jumps: int = 0  # stamps that went back by more than STAMP_JUMP_NS; tracking went on
    out_of_order: int = 0  # frames just older than the target's frame, skipped
    state: str = "no target"
    # Recent per-frame times (ms): stamp -> publish, tracker, stamp -> image callback (transport),
    # callback -> worker start (mailbox wait), worker time outside the tracker (processing).
    samples: dict = dataclasses.field(default_factory=lambda: {
        name: deque(maxlen=256) for name in ("latency", "tracker", "transport", "wait", "processing")})


class _Preparing(NamedTuple):
    """A set_target whose target is being prepared; its caller's future waits for the adoption."""

    prepared: "Future[PreparedTarget]"
    stamp_ns: int
    caller: Optional[Future] = None


class Report(NamedTuple):
    """The worker's part of a diagnostics message."""

    warn: bool
    message: str
    values: dict[str, str]


class TrackingWorker:
    """Runs ``tracker`` on frames from ``ring``'s source on its own thread, between start() and stop().

    ``publish(tracked)`` sends a frame's outputs and returns the stamp -> publish latency in ms, or None
    when outputs are closed (the frame then counts for nothing). ``clock_ns`` is the clock stamps are
    compared with. The tracker and the counters survive stop()/start(); the mailbox is new each start.
    """

    def __init__(self, tracker: Tracker, ring: FrameRing, publish: Callable[[Tracked], Optional[float]],
                 clock_ns: Callable[[], int], log: Log, enabled: bool = True) -> None:
        self.tracker = tracker
        self.ring = ring
        self.enabled = enabled  # read per frame; also set at once by a live parameter change
        self.source = ""  # the images' origin, named in set_target errors
        self.target_id = 0
        self._publish, self._clock_ns, self._log = publish, clock_ns, log
        self._init_stamp_ns: Optional[int] = None
        self._stats = Stats()
        self._stats_lock = threading.Lock()
        self._last_report = (time.monotonic(), 0, 0, 0)  # time, processed, future_stamped, stamp_jumps
        self._mailbox: Optional[Mailbox[Frame]] = None
        self._thread: Optional[threading.Thread] = None
        # One at a time: a target prepares beside tracking, never beside another target.
        self._preparer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segtrack-prepare")

    # ---- any thread ----------------------------------------------------------------------------------

    def start(self, source: str) -> None:
        self.source = source
        self._mailbox = Mailbox()
        self._thread = threading.Thread(target=self._run, args=(self._mailbox,), name="segtrack-worker",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop taking work (pending commands fail) and wait up to ``timeout`` s for the thread; False if
        it is still busy with a frame (it ends after that frame)."""
        mailbox, thread = self._mailbox, self._thread
        self._mailbox, self._thread = None, None
        if mailbox is not None:
            mailbox.close()
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def active(self) -> bool:
        return self._mailbox is not None

    def put_frame(self, frame: Frame) -> bool:
        """Buffer ``frame`` for set_target and park it for tracking; False (ignored) when stopped."""
        mailbox = self._mailbox
        if mailbox is None:
            return False
        self.ring.append(frame.stamp_ns, frame, frame.nbytes)
        mailbox.put_frame(frame)
        return True

    def count_bad_frame(self) -> None:
        """A frame that could not even be parked (unreadable message)."""
        with self._stats_lock:
            self._stats.bad_frames += 1

    def set_target(self, target: Target, stamp_ns: Optional[int] = None) -> Future:
        """Initialise on the buffered frame stamped ``stamp_ns`` (None: the newest that converts); the
        future gets the new target id. On failure the old target is kept."""
        return self._submit(lambda: self._set_target(target, stamp_ns))

    def reset(self) -> Future:
        return self._submit(self._reset)

    def set_enabled(self, enabled: bool) -> Future:
        def apply() -> None:
            self.enabled = enabled

        return self._submit(apply)

    def report(self) -> Report:
        """State, rates and counters for diagnostics; WARN while inactive or lost, and for one report after
        a future-stamped frame or a stamp jump."""
        mailbox = self._mailbox
        received, dropped = (mailbox.received, mailbox.dropped) if mailbox is not None else (0, 0)
        with self._stats_lock:
            stats = self._stats
            medians = {name: statistics.median(v) if v else None for name, v in stats.samples.items()}
            stats = dataclasses.replace(stats, samples={})
        now = time.monotonic()
        last_time, last_processed, last_future, last_jumps = self._last_report
        self._last_report = (now, stats.processed, stats.future_stamped, stats.stamp_jumps)
        fps = (stats.processed - last_processed) / max(now - last_time, 1e-6)
        state = "inactive" if mailbox is None else "disabled" if not self.enabled else stats.state
        trouble = [what for what, new in (("images stamped in the future", stats.future_stamped > last_future),
                                          ("image stamps jumped back", stats.stamp_jumps > last_jumps)) if new]
        values = {
            "state": state,
            "target_id": self.target_id,
            "fps": f"{fps:.1f}",
            **{f"{name}_ms_median": "" if value is None else f"{value:.2f}" for name, value in medians.items()},
            "frames_received": received,
            "frames_processed": stats.processed,
            "frames_dropped": dropped,
            "bad_frames": stats.bad_frames,
            "future_stamped_frames": stats.future_stamped,
            "stamp_jumps": stats.stamp_jumps,
            "out_of_order_frames": stats.out_of_order,
        }
        warn = mailbox is None or state == TrackState.LOST.value or bool(trouble)
        return Report(warn, "; ".join([state] + trouble), {k: str(v) for k, v in values.items()})

    def _submit(self, command: Callable[[], Any]) -> Future:
        mailbox = self._mailbox
        if mailbox is None:
            future: Future = Future()
            future.set_exception(RuntimeError("the tracking worker is stopped"))
            return future
        return mailbox.submit(command)

    # ---- worker thread -------------------------------------------------------------------------------

    def _run(self, mailbox: Mailbox) -> None:
        held: deque = deque()  # commands in arrival order, served once no target is being prepared
        preparing: Optional[_Preparing] = None
        while not mailbox.closed:
            command, frame = mailbox.take(timeout=0.5)
            if command is not None:
                held.append(command)
            elif frame is not None:
                try:
                    self._process(frame)
                except Exception:  # noqa: BLE001 - one bad frame must not stop tracking
                    self._log.error(f"unexpected error processing a frame:\n{traceback.format_exc()}",
                                    throttle_duration_sec=LOG_THROTTLE_S)
            if preparing is not None and preparing.prepared.done():
                self._finish_set_target(preparing)
                preparing = None
            while preparing is None and held:
                preparing = self._serve(*held.popleft())
                if preparing is not None:
                    preparing.prepared.add_done_callback(lambda _: mailbox.wake())
        stopped = RuntimeError("the tracking worker stopped")
        for _, future in held:
            future.set_exception(stopped)
        if preparing is not None:
            preparing.caller.set_exception(stopped)

    @staticmethod
    def _serve(function: Callable[[], Any], future: Future) -> Optional[_Preparing]:
        """Run a command; a set_target's preparation is returned with its caller's future, unanswered."""
        if not future.set_running_or_notify_cancel():
            return None
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            future.set_exception(exc)
            return None
        if isinstance(result, _Preparing):
            return result._replace(caller=future)
        future.set_result(result)
        return None

    def _set_target(self, target: Target, stamp_ns: Optional[int]) -> _Preparing:
        if stamp_ns is not None:
            frame = self.ring.find(stamp_ns)
            if frame is None:
                span = self.ring.stamp_range()
                held = f"buffered stamps span {span[0]}..{span[1]} ns" if span else "no frame buffered yet"
                raise TargetRequestError(f"no buffered frame has stamp {stamp_ns} ns ({held})")
            image = frame.to_bgr()
        else:
            stamp_ns, image = self._newest_decodable()
        return _Preparing(self._preparer.submit(self.tracker.prepare, image, target), stamp_ns)

    def _finish_set_target(self, preparing: _Preparing) -> None:
        """Make a prepared target current (on failure the current one stays) and answer its caller."""
        try:
            self.tracker.adopt(preparing.prepared.result())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            preparing.caller.set_exception(exc)
            return
        self.target_id += 1
        self._init_stamp_ns = preparing.stamp_ns
        with self._stats_lock:
            self._stats.state = "initialized"
        preparing.caller.set_result(self.target_id)

    def _newest_decodable(self) -> tuple[int, np.ndarray]:
        """(stamp, BGR image) of the newest buffered frame that converts; a broken newest frame is skipped."""
        error = None
        for stamp_ns, frame in self.ring.newest_first():
            try:
                return stamp_ns, frame.to_bgr()
            except SegtrackError as exc:
                error = error or exc
        if error is not None:
            raise TargetRequestError(f"none of the buffered frames from {self.source} is usable "
                                     f"(newest: {error}); set_target needs a frame to initialise on")
        raise TargetRequestError(f"no image received yet on {self.source}; "
                                 "set_target needs a frame to initialise on")

    def _reset(self) -> None:
        self.tracker.reset()
        self._init_stamp_ns = None
        with self._stats_lock:
            self._stats.state = "no target"

    def _process(self, frame: Frame) -> None:
        started_ns = time.time_ns()
        stamp_ns = frame.stamp_ns
        ahead_ns = stamp_ns - self._clock_ns()
        if ahead_ns > FUTURE_STAMP_NS:
            with self._stats_lock:
                self._stats.future_stamped += 1
            self._log.warning(f"image stamped {ahead_ns * 1e-9:.3f} s ahead of this node's clock "
                              "(camera clock not synchronised?); tracking it anyway",
                              throttle_duration_sec=LOG_THROTTLE_S)
        tracker = self.tracker
        if not self.enabled or not tracker.initialized or not self._in_order(stamp_ns):
            return
        try:
            image = frame.to_bgr()
        except SegtrackError as exc:
            with self._stats_lock:
                self._stats.bad_frames += 1
            self._log.warning(f"dropping a bad image: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        start = time.perf_counter()
        try:
            result = tracker.track(image)
        except InvalidFrameError as exc:
            # E.g. the camera changed resolution: report the target lost until a new target is set.
            self._log.warning(f"target lost: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            result = TrackResult(np.zeros(image.shape[:2], bool), 0.0, None, None, TrackState.LOST)
        tracker_ms = (time.perf_counter() - start) * 1e3
        latency_ms = self._publish(Tracked(frame, image, result, tracker_ms, self.target_id))
        if latency_ms is None:
            return
        finished_ns = time.time_ns()
        with self._stats_lock:
            stats = self._stats
            stats.processed += 1
            stats.state = result.state.value
            for name, value in (("latency", latency_ms), ("tracker", tracker_ms),
                                ("transport", (frame.received_ns - stamp_ns) * 1e-6),
                                ("wait", (started_ns - frame.received_ns) * 1e-6),
                                ("processing", (finished_ns - started_ns) * 1e-6 - tracker_ms)):
                stats.samples[name].append(value)

    def _in_order(self, stamp_ns: int) -> bool:
        """False for a frame that was in flight when the target was set on a newer one (skipped); a larger
        jump back is a clock jump, tracked from then on."""
        init_stamp_ns = self._init_stamp_ns
        if init_stamp_ns is None or stamp_ns >= init_stamp_ns:
            return True
        if init_stamp_ns - stamp_ns <= STAMP_JUMP_NS:
            with self._stats_lock:
                self._stats.out_of_order += 1
            return False
        with self._stats_lock:
            self._stats.stamp_jumps += 1
        self._log.warning(
            f"image stamps jumped back {(init_stamp_ns - stamp_ns) * 1e-9:.3f} s before the frame the target "
            "was set on (clock reset, bag loop or a future-stamped frame); tracking goes on from this frame",
            throttle_duration_sec=LOG_THROTTLE_S)
        self._init_stamp_ns = None
        return True
