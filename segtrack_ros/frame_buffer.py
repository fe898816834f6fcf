"""Thread-safe frame hand-off between the ROS callbacks and the tracking worker (no ROS import).

``Mailbox`` holds one pending frame: the newest wins, a frame replaced before the worker took it counts
as dropped. It also carries commands (set target, reset, enable) so that everything touching the tracker
runs on the worker thread, in order. ``FrameRing`` keeps the last few frames by stamp, bounded by count and by
bytes, so a target can be set on the frame an operator actually clicked on.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import Future
from typing import Any, Callable, Deque, Generic, Optional, Tuple, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """One-slot frame mailbox plus a FIFO of commands; commands are served before frames."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Optional[T] = None
        self._commands: Deque[Tuple[Callable[[], Any], Future]] = collections.deque()
        self._closed = False
        self._woken = False
        self.received = 0
        self.dropped = 0

    def put_frame(self, frame: T) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.received += 1
            self._cond.notify()

    def submit(self, command: Callable[[], Any]) -> Future:
        """Queue ``command`` for the worker; the future gets its return value or exception."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                future.set_exception(RuntimeError("the tracking worker is stopped"))
                return future
            self._commands.append((command, future))
            self._cond.notify()
        return future

    def wake(self) -> None:
        """Make the waiting (or next) ``take`` return at once, with or without work."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def take(self, timeout: Optional[float] = None) -> Tuple[Optional[Tuple[Callable[[], Any], Future]], Optional[T]]:
        """Wait for work: returns (command, None), (None, frame) or (None, None) on timeout/close/wake."""
        with self._cond:
            if not self._cond.wait_for(
                    lambda: self._closed or self._woken or self._commands or self._frame is not None, timeout):
                return None, None
            self._woken = False
            if self._commands:
                return self._commands.popleft(), None
            frame, self._frame = self._frame, None
            return None, frame

    def close(self) -> None:
        """Wake the worker for good; pending commands fail instead of hanging their callers."""
        with self._cond:
            self._closed = True
            pending = list(self._commands)
            self._commands.clear()
            self._frame = None
            self._cond.notify_all()
        for _, future in pending:
            future.set_exception(RuntimeError("the tracking worker stopped"))

    @property
    def closed(self) -> bool:
        return self._closed


class FrameRing(Generic[T]):
    """The last ``size`` frames, at most ``max_bytes`` of them (the newest is always kept), looked up by
    stamp (integer nanoseconds)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        if size < 1:
            raise ValueError(f"frame buffer size must be at least 1, got {size}")
        if max_bytes < 1:
            raise ValueError(f"frame buffer byte bound must be at least 1, got {max_bytes}")
        self._size, self._max_bytes = size, max_bytes
        self._lock = threading.Lock()
        self._frames: Deque[Tuple[int, T, int]] = collections.deque()
        self._bytes = 0

    def append(self, stamp_ns: int, frame: T, nbytes: int) -> None:
        with self._lock:
            self._frames.append((stamp_ns, frame, nbytes))
            self._bytes += nbytes
            while len(self._frames) > self._size or (self._bytes > self._max_bytes and len(self._frames) > 1):
                self._bytes -= self._frames.popleft()[2]

    def newest_first(self) -> list[Tuple[int, T]]:
        """(stamp, frame) pairs from the newest to the oldest."""
        with self._lock:
            return [(stamp, frame) for stamp, frame, _ in reversed(self._frames)]

    def find(self, stamp_ns: int) -> Optional[T]:
        with self._lock:
            for stamp, frame, _ in reversed(self._frames):
                if stamp == stamp_ns:
                    return frame
        return None

    def stamp_range(self) -> Optional[Tuple[int, int]]:
        with self._lock:
            if not self._frames:
                return None
            return self._frames[0][0], self._frames[-1][0]

    def usage(self) -> Tuple[int, int]:
        """(frames, bytes) held."""
        with self._lock:
            return len(self._frames), self._bytes

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0
