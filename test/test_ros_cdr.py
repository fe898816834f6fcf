"""Zero-copy parsing of serialized sensor_msgs/Image agrees with rclpy's own deserialisation."""

from __future__ import annotations

import struct

import numpy as np
import pytest


from prerequisites import needs_ros
from segtrack_ros.cdr import parse_image
from segtrack_core.image_conversion import ImageConversionError, image_msg_to_bgr


def handmade_big_endian(frame_id: str, encoding: str, pixels: bytes, height: int, width: int, step: int) -> bytes:
    def string(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack(">I", len(raw)) + raw

    out = bytearray(b"\x00\x00\x00\x00")
    out += struct.pack(">iI", 12, 345)
    out += string(frame_id)
    out += b"\0" * (-(len(out) - 4) % 4)
    out += struct.pack(">II", height, width)
    out += string(encoding)
    out += b"\x01"  # is_bigendian
    out += b"\0" * (-(len(out) - 4) % 4)
    out += struct.pack(">II", step, len(pixels)) + pixels
    return bytes(out)


def test_big_endian_cdr_is_read_with_its_byte_order():
    pixels = bytes(range(24))
    raw = parse_image(handmade_big_endian("camera_frame", "bgr8", pixels, 2, 4, 12))
    assert (raw.stamp_sec, raw.stamp_nanosec, raw.stamp_ns) == (12, 345, 12_000_000_345)
    assert (raw.frame_id, raw.height, raw.width, raw.encoding, raw.is_bigendian, raw.step) == (
        "camera_frame", 2, 4, "bgr8", 1, 12)
    assert bytes(raw.data) == pixels


def test_truncated_or_foreign_buffers_raise_typed_errors():
    good = handmade_big_endian("cam", "mono8", bytes(6), 2, 3, 3)
    with pytest.raises(ImageConversionError, match="truncated"):
        parse_image(good[:-1])
    with pytest.raises(ImageConversionError, match="truncated"):
        parse_image(good[:10])
    with pytest.raises(ImageConversionError, match="encapsulation"):
        parse_image(b"\x00\x0a" + good[2:])


@needs_ros("serialisation against rclpy")
@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera_optical_frame"])
@pytest.mark.parametrize("encoding", ["bgr8", "mono8", "16UC1", "yuv422_yuy2"])
def test_matches_rclpy_serialisation_for_every_alignment(frame_id, encoding):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from segtrack_core.image_conversion import to_byte_array

    rng = np.random.default_rng(len(frame_id) + len(encoding))
    channels = {"bgr8": 3, "mono8": 1, "16UC1": 2, "yuv422_yuy2": 2}[encoding]
    step = 6 * channels + 3  # padded rows
    msg = Image(height=5, width=6, encoding=encoding, is_bigendian=0, step=step)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg.header.frame_id = frame_id
    msg.data = to_byte_array(rng.integers(0, 256, 5 * step, dtype=np.uint8))
    serialized = serialize_message(msg)
    raw = parse_image(serialized)
    assert (raw.stamp_sec, raw.stamp_nanosec, raw.frame_id) == (1_700_000_000, 123_456_789, frame_id)
    assert (raw.height, raw.width, raw.encoding, raw.is_bigendian, raw.step) == (5, 6, encoding, 0, step)
    assert bytes(raw.data) == bytes(msg.data)
    np.testing.assert_array_equal(image_msg_to_bgr(raw), image_msg_to_bgr(msg))
    # Zero-copy: the pixels are a view into the serialized buffer.
    assert raw.data.obj is serialized
