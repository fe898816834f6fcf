"""rosbag2 recordings (sqlite3 and MCAP) as frame sources, read with the pure-Python ``rosbags`` library.

No ROS install is needed. A bag is a rosbag2 folder (with metadata.yaml) or one of its storage files
(.db3, .mcap). Image topics are sensor_msgs/Image (every encoding ``image_conversion`` reads) and
sensor_msgs/CompressedImage (anything cv2.imdecode reads).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_typestore

from .errors import InvalidFrameError
from .image_conversion import UnsupportedEncodingError, compressed_to_bgr, image_to_bgr
from .io import DataError, SkippedFrame

log = logging.getLogger(__name__)

RAW_IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (RAW_IMAGE, COMPRESSED_IMAGE)
STORAGE_SUFFIXES = (".db3", ".mcap")
# Bags written before Iron (sqlite3) carry no message definitions; these types have not changed since.
_DEFAULT_TYPES = get_typestore(Stores.ROS2_KILTED)


class BagError(DataError):
    """A bag cannot be read, or has no (such) image topic."""


def is_bag(path: str | os.PathLike) -> bool:
    """True for a rosbag2 folder (metadata.yaml inside) or a .db3 / .mcap file."""
    path = Path(path)
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.suffix.lower() in STORAGE_SUFFIXES


@dataclass(frozen=True)
class BagTopic:
    name: str
    msgtype: str
    count: int

    @property
    def compressed(self) -> bool:
        return self.msgtype == COMPRESSED_IMAGE


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: its position in the topic, the time the recorder got it (ns) and its bytes
    (CDR, exactly as they went over the wire)."""

    index: int
    log_time_ns: int
    data: bytes


def _stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class Bag:
    """An open bag (a context manager): its image topics, their messages, decoding and restamping."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        if not is_bag(self.path):
            raise BagError(f"{self.path} is not a rosbag2 bag (a folder with metadata.yaml, or a .db3 / .mcap file)")
        try:
            self._reader = AnyReader([self.path], default_typestore=_DEFAULT_TYPES)
            self._reader.open()
        except (AnyReaderError, ReaderError, OSError, KeyError, ValueError) as exc:
            raise BagError(f"cannot read bag {self.path}: {_reason(exc)}") from None
        self.start_ns = self._reader.start_time
        self.end_ns = self._reader.end_time

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "Bag":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def image_topics(self) -> List[BagTopic]:
        return [BagTopic(name, info.msgtype, info.msgcount) for name, info in sorted(self._reader.topics.items())
                if info.msgtype in IMAGE_TYPES]

    def topic(self, name: Optional[str] = None) -> BagTopic:
        """The image topic ``name``, or the bag's only image topic when ``name`` is None."""
        topics = self.image_topics()
        listing = ", ".join(f"{t.name} ({t.msgtype}, {t.count} messages)" for t in topics) or "none"
        if name is None:
            if len(topics) != 1:
                raise BagError(f"bag {self.path} has {len(topics)} image topics, choose one with --topic: {listing}")
            return topics[0]
        for topic in topics:
            if topic.name == name:
                return topic
        other = self._reader.topics.get(name)
        if other is not None:
            raise BagError(f"topic {name} in {self.path} is {other.msgtype}, not an image; image topics: {listing}")
        raise BagError(f"no topic {name} in bag {self.path}; image topics: {listing}")

    def messages(self, topic: BagTopic) -> Iterator[BagMessage]:
        connections = [c for c in self._reader.connections if c.topic == topic.name]
        index = 0
        try:
            for _, log_time, data in self._reader.messages(connections=connections):
                yield BagMessage(index, log_time, bytes(data))
                index += 1
        except (AnyReaderError, ReaderError, OSError, KeyError, ValueError) as exc:
            raise BagError(f"bag {self.path} is unreadable after {index} messages of {topic.name}: "
                           f"{_reason(exc)}") from None

    def decode(self, topic: BagTopic, message: BagMessage):
        """The message as a rosbags dataclass (fields as in the .msg definition)."""
        try:
            return self._reader.deserialize(message.data, topic.msgtype)
        except (AnyReaderError, ValueError, IndexError) as exc:  # truncated or corrupt CDR
            raise InvalidFrameError(f"message {message.index} of {topic.name} does not deserialize: "
                                    f"{_reason(exc)}") from None

    def frame(self, topic: BagTopic, message: BagMessage) -> Tuple[np.ndarray, int]:
        """(BGR frame, header stamp in ns) of an image message.

        A message that does not convert raises InvalidFrameError; an encoding no frame of the topic can
        have raises BagError (not worth skipping every frame for)."""
        msg = self.decode(topic, message)
        if topic.compressed:
            return compressed_to_bgr(msg.data), _stamp_ns(msg)
        try:
            frame = image_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
        except UnsupportedEncodingError as exc:
            raise BagError(f"{topic.name} in {self.path}: {exc}") from None
        return frame, _stamp_ns(msg)

    def header_stamp(self, topic: BagTopic, message: BagMessage) -> int:
        return _stamp_ns(self.decode(topic, message))

    def restamped(self, topic: BagTopic, message: BagMessage, stamp_ns: int) -> bytes:
        """The message's bytes with its header stamp replaced by ``stamp_ns``."""
        msg = self.decode(topic, message)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        return bytes(self._reader.typestore.serialize_cdr(msg, topic.msgtype))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class BagFrameSource:
    """The frames of one image topic of a bag, as (index, frame) pairs like io.FrameSource.

    ``index`` is the message's position in the topic. Messages that do not convert, and frames whose
    size differs from the first one, are skipped (logged, passed to ``on_skip``, kept in ``skipped``).
    ``fps`` is the topic's mean recorded rate estimated from the bag's time span (exact when the topic
    spans the bag); ``log_times`` and ``stamps`` map each yielded index to its recording time and
    header stamp (ns).
    """

    def __init__(self, path: str | os.PathLike, topic: Optional[str] = None,
                 on_skip: Optional[Callable[[SkippedFrame], None]] = None):
        self.path = Path(path)
        self.on_skip = on_skip
        self.skipped: List[SkippedFrame] = []
        self.log_times: dict[int, int] = {}
        self.stamps: dict[int, int] = {}
        with Bag(self.path) as bag:
            self.topic = bag.topic(topic)
            span = bag.end_ns - bag.start_ns
        if self.topic.count == 0:
            raise BagError(f"topic {self.topic.name} in {self.path} has no messages")
        self.fps = (self.topic.count - 1) * 1e9 / span if self.topic.count > 1 and span > 0 else 0.0

    def __len__(self) -> int:
        return self.topic.count

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        self.skipped, self.log_times, self.stamps = [], {}, {}
        size = None
        with Bag(self.path) as bag:
            for message in bag.messages(self.topic):
                try:
                    frame, stamp = bag.frame(self.topic, message)
                except InvalidFrameError as exc:
                    self._skip(message.index, str(exc))
                    continue
                if size is None:
                    size = frame.shape[:2]
                elif frame.shape[:2] != size:
                    self._skip(message.index, f"frame is {frame.shape[1]}x{frame.shape[0]}, "
                                              f"earlier frames are {size[1]}x{size[0]}")
                    continue
                self.log_times[message.index] = message.log_time_ns
                self.stamps[message.index] = stamp
                yield message.index, frame

    def recorded_fps(self) -> float:
        """The recorded rate of the frames read so far (from their recording times)."""
        times = sorted(self.log_times.values())
        return (len(times) - 1) * 1e9 / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def _skip(self, index: int, reason: str) -> None:
        skipped = SkippedFrame(index, reason)
        self.skipped.append(skipped)
        log.warning("skipping message %d of %s in %s: %s", index, self.topic.name, self.path, reason)
        if self.on_skip is not None:
            self.on_skip(skipped)
