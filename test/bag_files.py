"""Small rosbag2 bags of real frames for the tests, written with rosbags as a robot's recorder would."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TYPES = get_typestore(Stores.ROS2_KILTED)
Image = TYPES.types["sensor_msgs/msg/Image"]
CompressedImage = TYPES.types["sensor_msgs/msg/CompressedImage"]
Header = TYPES.types["std_msgs/msg/Header"]
Time = TYPES.types["builtin_interfaces/msg/Time"]
String = TYPES.types["std_msgs/msg/String"]

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
START_NS = 1_700_000_000_000_000_000  # a field run's clock, far from the test machine's
PERIOD_NS = 100_000_000  # 10 fps
RECORD_DELAY_NS = 3_000_000  # the recorder gets each image 3 ms after its stamp


def header(index: int) -> Header:
    sec, nanosec = divmod(START_NS + index * PERIOD_NS, 1_000_000_000)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="camera")


def raw_message(frame: np.ndarray, index: int, encoding: str = "bgr8") -> Image:
    pixels = {"bgr8": frame, "rgb8": frame[:, :, ::-1], "mono8": cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)}[encoding]
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return Image(header=header(index), height=height, width=width, encoding=encoding, is_bigendian=0,
                 step=pixels.nbytes // height, data=pixels.reshape(-1))


def compressed_message(frame: np.ndarray, index: int) -> CompressedImage:
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return CompressedImage(header=header(index), format="bgr8; jpeg compressed bgr8", data=jpeg.reshape(-1))


def write_bag(path: Path, storage: str, topics: dict[str, Sequence], compression: Optional[str] = None) -> Path:
    """A bag at ``path`` with, per topic, the given messages (rosbags dataclasses, or bytes written as they
    are after a first dataclass that gives the type), message i recorded
    RECORD_DELAY_NS after START_NS + i * PERIOD_NS; ``compression`` "file" or "message" compresses it
    with zstd as `ros2 bag record --compression-mode` does."""
    writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
    if compression:
        writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
    with writer:
        for topic, messages in topics.items():
            connection = writer.add_connection(topic, messages[0].__msgtype__, typestore=TYPES)
            for index, msg in enumerate(messages):
                data = msg if isinstance(msg, bytes) else TYPES.serialize_cdr(msg, msg.__msgtype__)
                writer.write(connection, START_NS + index * PERIOD_NS + RECORD_DELAY_NS, data)
    return path


def write_image_bag(path: Path, storage: str, frames: Sequence[np.ndarray], topic: str = "/camera/image_raw",
                    compressed: bool = False, encoding: str = "bgr8",
                    extra: Optional[dict[str, Sequence]] = None, compression: Optional[str] = None) -> Path:
    """A bag with ``frames`` on ``topic`` (raw ``encoding``, or JPEG on ``topic``/compressed) plus ``extra``."""
    messages = [compressed_message(f, i) if compressed else raw_message(f, i, encoding) for i, f in enumerate(frames)]
    name = f"{topic}/compressed" if compressed else topic
    return write_bag(path, storage, {name: messages, **(extra or {})}, compression)


def stamp_ns(index: int) -> int:
    return START_NS + index * PERIOD_NS
