"""sensor_msgs/Image <-> numpy without cv_bridge (pure numpy/OpenCV, no ROS import).

Functions take the message's fields (or any object that has them), so they are testable without ROS.
Conversions to BGR are zero-copy where the encoding allows it (bgr8 returns a view of the message's
buffer, row padding sliced away); everything else is one vectorised OpenCV call.
"""

from __future__ import annotations

import array
from typing import Any, Optional

import cv2
import numpy as np

from .errors import InvalidFrameError


class ImageConversionError(InvalidFrameError):
    """The image message cannot be turned into a frame (empty, inconsistent size/step/data, undecodable)."""


class UnsupportedEncodingError(ImageConversionError):
    """The image's encoding is not one the node understands."""


# encoding -> (bytes per pixel, OpenCV conversion to BGR or None for "already BGR").
_COLOR_ENCODINGS = {
    "bgr8": (3, None),
    "8UC3": (3, None),
    "rgb8": (3, cv2.COLOR_RGB2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "8UC4": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, cv2.COLOR_GRAY2BGR),
    # Packed 4:2:2. "yuv422" is ROS's historical name for UYVY, "yuv422_yuy2" for YUYV.
    "yuv422": (2, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (2, cv2.COLOR_YUV2BGR_YUY2),
}
_SIXTEEN_BIT_ENCODINGS = ("16UC1", "mono16")

SUPPORTED_ENCODINGS = tuple(_COLOR_ENCODINGS) + _SIXTEEN_BIT_ENCODINGS


def _pixel_bytes(data: Any, height: int, width: int, step: int, bytes_per_pixel: int) -> np.ndarray:
    """HxWxbpp uint8 view of the image's bytes with row padding removed; raises on inconsistent fields."""
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageConversionError(f"empty image: {width}x{height} with no data")
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width*bytes_per_pixel = {width}*{bytes_per_pixel} = {row_bytes}")
    if buffer.size != step * height:
        raise ImageConversionError(
            f"data has {buffer.size} bytes, expected step*height = {step}*{height} = {step * height}")
    rows = buffer.reshape(height, step)
    if step != row_bytes:
        rows = rows[:, :row_bytes]
    return rows.reshape(height, width, bytes_per_pixel)


def _sixteen_bit_to_gray8(pixels: np.ndarray, is_bigendian: bool) -> np.ndarray:
    # A single frame's [min, max] is stretched to [0, 255]: depth in mm or 10-14 bit IR would be nearly
    # black with a fixed >>8 shift, and the tracker needs contrast more than absolute levels.
    values = pixels.view(">u2" if is_bigendian else "<u2")[:, :, 0]
    if is_bigendian:
        values = values.astype(np.uint16)
    return cv2.normalize(values, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)


def image_to_bgr(encoding: str, height: int, width: int, step: int, data: Any,
                 is_bigendian: bool = False) -> np.ndarray:
    """HxWx3 uint8 BGR frame from raw image fields (sensor_msgs/Image layout).

    Raises UnsupportedEncodingError for an unknown encoding and ImageConversionError for an empty image,
    ``step < width * bytes_per_pixel`` or ``len(data) != step * height``.
    """
    if encoding in _SIXTEEN_BIT_ENCODINGS:
        pixels = _pixel_bytes(data, height, width, step, 2)
        return cv2.cvtColor(_sixteen_bit_to_gray8(pixels, is_bigendian), cv2.COLOR_GRAY2BGR)
    try:
        bytes_per_pixel, conversion = _COLOR_ENCODINGS[encoding]
    except KeyError:
        raise UnsupportedEncodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}") from None
    if bytes_per_pixel == 2 and width % 2:
        raise ImageConversionError(f"{encoding} needs an even width, got {width}")
    pixels = _pixel_bytes(data, height, width, step, bytes_per_pixel)
    if conversion is None:
        return pixels
    if bytes_per_pixel == 1:
        return cv2.cvtColor(pixels[:, :, 0], conversion)
    return cv2.cvtColor(pixels, conversion)


def image_msg_to_bgr(msg: Any) -> np.ndarray:
    """BGR frame from a sensor_msgs/Image (or anything with its fields)."""
    return image_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def compressed_to_bgr(data: Any) -> np.ndarray:
    """BGR frame from a sensor_msgs/CompressedImage payload (JPEG, PNG, ... anything cv2.imdecode reads)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageConversionError("empty compressed image")
    frame = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if frame is None:
        raise ImageConversionError(f"cannot decode compressed image ({buffer.size} bytes)")
    return frame


def mono8_to_mask(encoding: str, height: int, width: int, step: int, data: Any) -> np.ndarray:
    """HxW bool mask (nonzero = target) from a mono8 image's fields."""
    if encoding not in ("mono8", "8UC1"):
        raise UnsupportedEncodingError(f"a target mask must be mono8, got {encoding!r}")
    return _pixel_bytes(data, height, width, step, 1)[:, :, 0] != 0


def mask_to_mono8(mask: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """HxW uint8 image, 255 where ``mask`` is true; written into ``out`` (same shape, uint8) when given."""
    return np.multiply(np.asarray(mask, dtype=bool).view(np.uint8), 255, out=out, dtype=np.uint8)


def to_byte_array(image: np.ndarray) -> array.array:
    """The image's bytes as array.array('B'), the type ROS message byte fields store without a slow path."""
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(image).data)
    return data
