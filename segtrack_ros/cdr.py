"""Zero-copy view of a serialized sensor_msgs/Image (CDR), for raw subscriptions.

rclpy turns a received Image into Python by copying its pixels twice more (C struct -> bytes ->
array.array); a 1080p frame is 6 MB. Reading the serialized CDR directly leaves the pixels where DDS put
them: ``data`` is a memoryview into the received buffer. No ROS import (pure struct parsing).

Layout (all fields at most 4-byte aligned, so XCDR1 and XCDR2 "final" encodings agree):
  encapsulation (2 bytes id, 2 bytes options) | stamp.sec int32 | stamp.nanosec uint32 |
  frame_id string | height uint32 | width uint32 | encoding string | is_bigendian uint8 | step uint32 |
  data sequence<uint8>      (string = uint32 length incl. NUL, chars, NUL; sequence = uint32 count, items)
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from segtrack_core.image_conversion import ImageConversionError

# Encapsulation ids: plain CDR (XCDR1) and PLAIN_CDR2, big- and little-endian.
_BIG_ENDIAN = {b"\x00\x00", b"\x00\x06"}
_LITTLE_ENDIAN = {b"\x00\x01", b"\x00\x07"}
_HEADER_BYTES = 4


class RawImage(NamedTuple):
    """sensor_msgs/Image fields; ``data`` is a memoryview into the serialized buffer."""

    stamp_sec: int
    stamp_nanosec: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview

    @property
    def stamp_ns(self) -> int:
        return self.stamp_sec * 1_000_000_000 + self.stamp_nanosec


class _Reader:
    def __init__(self, buffer: memoryview, little_endian: bool) -> None:
        self.buffer = buffer
        self.order = "<" if little_endian else ">"
        self.offset = _HEADER_BYTES  # alignment is relative to the end of the encapsulation header

    def _take(self, size: int, align: int) -> int:
        start = self.offset + (-(self.offset - _HEADER_BYTES) % align)
        end = start + size
        if end > len(self.buffer):
            raise ImageConversionError(f"serialized image is truncated ({len(self.buffer)} bytes)")
        self.offset = end
        return start

    def unsigned(self, fmt: str = "I") -> int:
        size = struct.calcsize(fmt)
        return struct.unpack_from(self.order + fmt, self.buffer, self._take(size, size))[0]

    def string(self) -> str:
        length = self.unsigned()
        start = self._take(length, 1)
        return bytes(self.buffer[start:start + max(length - 1, 0)]).decode("utf-8", errors="replace")

    def octets(self) -> memoryview:
        count = self.unsigned()
        start = self._take(count, 1)
        return self.buffer[start:start + count]


def parse_image(serialized: bytes) -> RawImage:
    """Fields of a CDR-serialized sensor_msgs/Image without copying its pixel data."""
    buffer = memoryview(serialized)
    encapsulation = bytes(buffer[:2])
    if encapsulation not in _BIG_ENDIAN | _LITTLE_ENDIAN:
        raise ImageConversionError(f"unsupported CDR encapsulation {encapsulation.hex()}")
    reader = _Reader(buffer, encapsulation in _LITTLE_ENDIAN)
    sec = reader.unsigned("i")
    nanosec = reader.unsigned()
    frame_id = reader.string()
    height = reader.unsigned()
    width = reader.unsigned()
    encoding = reader.string()
    is_bigendian = reader.unsigned("B")
    step = reader.unsigned()
    data = reader.octets()
    return RawImage(sec, nanosec, frame_id, height, width, encoding, is_bigendian, step, data)
