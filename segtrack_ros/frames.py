"""A received camera image, kept as received until the tracking worker converts it (the subscription
callback only parks it): raw (a zero-copy cdr.RawImage) or compressed (sensor_msgs/CompressedImage).
Both give the worker what it needs (stamp, size, BGR pixels) and the node the header for its outputs."""

from __future__ import annotations

from typing import NamedTuple, Union

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from segtrack_core.image_conversion import compressed_to_bgr, image_msg_to_bgr

from .cdr import RawImage
from .conversions import stamp_to_ns


class RawFrame(NamedTuple):
    image: RawImage
    received_ns: int  # system time when the callback got it

    @property
    def stamp_ns(self) -> int:
        return self.image.stamp_ns

    @property
    def nbytes(self) -> int:
        return len(self.image.data)

    def to_bgr(self) -> np.ndarray:
        return image_msg_to_bgr(self.image)

    def header(self) -> Header:
        raw = self.image
        return Header(stamp=Time(sec=raw.stamp_sec, nanosec=raw.stamp_nanosec), frame_id=raw.frame_id)


class CompressedFrame(NamedTuple):
    msg: CompressedImage
    received_ns: int

    @property
    def stamp_ns(self) -> int:
        return stamp_to_ns(self.msg.header.stamp)

    @property
    def nbytes(self) -> int:
        return len(self.msg.data)

    def to_bgr(self) -> np.ndarray:
        return compressed_to_bgr(self.msg.data)

    def header(self) -> Header:
        return self.msg.header


InputFrame = Union[RawFrame, CompressedFrame]
