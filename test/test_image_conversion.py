"""sensor_msgs/Image fields <-> numpy, without ROS: every encoding, row padding, errors."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from segtrack_core.errors import InvalidFrameError, SegtrackError
from segtrack_core.image_conversion import (ImageConversionError, UnsupportedEncodingError, compressed_to_bgr,
                                           image_msg_to_bgr, image_to_bgr, mask_to_mono8, mono8_to_mask,
                                           to_byte_array)

RNG = np.random.default_rng(7)
BGR = RNG.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)


def padded(pixels: np.ndarray, padding: int) -> tuple[bytes, int]:
    """Row-major bytes of ``pixels`` (HxWxC or HxW) with ``padding`` junk bytes after every row."""
    rows = pixels.reshape(pixels.shape[0], -1)
    junk = np.full((rows.shape[0], padding), 0xAB, dtype=np.uint8)
    return np.concatenate([rows.view(np.uint8), junk], axis=1).tobytes(), rows.view(np.uint8).shape[1] + padding


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding, pixels", [
    ("bgr8", BGR),
    ("rgb8", BGR[:, :, ::-1]),
    ("bgra8", np.dstack([BGR, np.full(BGR.shape[:2], 200, np.uint8)])),
    ("rgba8", np.dstack([BGR[:, :, ::-1], np.full(BGR.shape[:2], 200, np.uint8)])),
])
def test_color_encodings_give_the_same_bgr_frame(encoding, pixels, padding):
    data, step = padded(np.ascontiguousarray(pixels), padding)
    frame = image_to_bgr(encoding, 6, 10, step, data)
    assert frame.shape == (6, 10, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, BGR)


@pytest.mark.parametrize("padding", [0, 3])
def test_mono8_is_replicated_to_three_channels(padding):
    gray = BGR[:, :, 1].copy()
    data, step = padded(gray, padding)
    frame = image_to_bgr("mono8", 6, 10, step, data)
    for channel in range(3):
        np.testing.assert_array_equal(frame[:, :, channel], gray)


def test_bgr8_without_padding_is_a_view_of_the_message_buffer():
    data = bytearray(BGR.tobytes())
    frame = image_to_bgr("bgr8", 6, 10, 30, data)
    data[0] = (int(data[0]) + 1) % 256
    assert frame[0, 0, 0] == data[0]


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("padding", [0, 4])
def test_16uc1_stretches_the_frame_range_to_8_bit(bigendian, padding):
    depth = np.linspace(1000, 5000, 60).reshape(6, 10).astype(np.uint16)
    data, step = padded(depth.astype(">u2" if bigendian else "<u2"), padding)
    frame = image_to_bgr("16UC1", 6, 10, step, data, is_bigendian=bigendian)
    assert frame.shape == (6, 10, 3)
    gray = frame[:, :, 0].astype(int)
    assert gray[0, 0] == 0 and gray[-1, -1] == 255
    assert np.all(np.diff(gray.ravel()) >= 0)  # order preserved
    expected = np.round((depth.astype(float) - 1000) * 255 / 4000)
    assert np.abs(gray - expected).max() <= 1


def test_16uc1_constant_frame_does_not_divide_by_zero():
    data = np.full((4, 4), 700, np.uint16).tobytes()
    frame = image_to_bgr("16UC1", 4, 4, 8, data)
    assert frame.shape == (4, 4, 3) and np.all(frame == frame[0, 0])


@pytest.mark.parametrize("encoding, code", [("yuv422", cv2.COLOR_BGR2YUV_UYVY),
                                            ("yuv422_yuy2", cv2.COLOR_BGR2YUV_YUY2)])
@pytest.mark.parametrize("padding", [0, 6])
def test_packed_yuv422_round_trips_a_smooth_image(encoding, code, padding):
    # A smooth image survives 4:2:2 chroma subsampling nearly unchanged.
    ramp = np.zeros((8, 16, 3), np.uint8)
    ramp[:, :, 0] = np.linspace(40, 200, 16)[None, :]
    ramp[:, :, 1] = 120
    ramp[:, :, 2] = np.linspace(180, 60, 8)[:, None]
    packed = cv2.cvtColor(ramp, code)
    data, step = padded(packed, padding)
    frame = image_to_bgr(encoding, 8, 16, step, data)
    assert frame.shape == (8, 16, 3)
    assert np.abs(frame.astype(int) - ramp).max() <= 12


def test_uyvy_byte_order_is_u_y0_v_y1():
    # Gray pixels: U = V = 128; luma differs per pixel, so a swapped byte order would show.
    uyvy = np.array([[128, 50, 128, 200]], np.uint8)
    frame = image_to_bgr("yuv422", 1, 2, 4, uyvy.tobytes())
    assert abs(int(frame[0, 0, 1]) - 41) <= 4 and abs(int(frame[0, 1, 1]) - 216) <= 4
    yuyv = np.array([[50, 128, 200, 128]], np.uint8)
    np.testing.assert_array_equal(image_to_bgr("yuv422_yuy2", 1, 2, 4, yuyv.tobytes()), frame)


def test_message_fields_are_read_from_the_message():
    msg = SimpleNamespace(encoding="rgb8", height=6, width=10, step=30, is_bigendian=0,
                          data=to_byte_array(BGR[:, :, ::-1]))
    np.testing.assert_array_equal(image_msg_to_bgr(msg), BGR)


@pytest.mark.parametrize("args, match", [
    (("bayer_rggb8", 6, 10, 10, bytes(60)), "unsupported image encoding"),
    (("bgr8", 0, 10, 30, b""), "empty image"),
    (("bgr8", 6, 0, 0, b""), "empty image"),
    (("bgr8", 6, 10, 30, bytes(179)), "expected step\\*height"),
    (("bgr8", 6, 10, 31, bytes(180)), "expected step\\*height"),
    (("bgr8", 6, 10, 20, bytes(120)), "step 20 is smaller"),
    (("16UC1", 6, 10, 10, bytes(60)), "step 10 is smaller"),
    (("yuv422", 6, 9, 18, bytes(108)), "even width"),
])
def test_bad_images_raise_typed_errors(args, match):
    with pytest.raises(ImageConversionError, match=match) as info:
        image_to_bgr(*args)
    # Catchable as the core library's frame error and as a ValueError.
    assert isinstance(info.value, InvalidFrameError) and isinstance(info.value, SegtrackError)
    assert isinstance(info.value, ValueError)


def test_unsupported_encoding_has_its_own_type():
    with pytest.raises(UnsupportedEncodingError, match="supported: .*bgr8"):
        image_to_bgr("32FC1", 2, 2, 16, bytes(32))


def test_compressed_jpeg_and_png_decode():
    image = cv2.GaussianBlur(cv2.resize(BGR, (40, 24), interpolation=cv2.INTER_NEAREST), (5, 5), 0)
    for ext in (".png", ".jpg"):
        ok, encoded = cv2.imencode(ext, image)
        assert ok
        frame = compressed_to_bgr(encoded.tobytes())
        assert frame.shape == (24, 40, 3)
        assert np.abs(frame.astype(int) - image).mean() < (0.5 if ext == ".png" else 8)
    with pytest.raises(ImageConversionError, match="empty"):
        compressed_to_bgr(b"")
    with pytest.raises(ImageConversionError, match="cannot decode"):
        compressed_to_bgr(b"not an image at all")


def test_mask_round_trip_through_mono8():
    mask = RNG.random((6, 10)) > 0.5
    mono = mask_to_mono8(mask)
    assert mono.dtype == np.uint8 and set(np.unique(mono)) <= {0, 255}
    data, step = padded(mono, 2)
    np.testing.assert_array_equal(mono8_to_mask("mono8", 6, 10, step, data), mask)
    out = np.empty((6, 10), np.uint8)
    assert mask_to_mono8(mask, out=out) is out
    with pytest.raises(UnsupportedEncodingError, match="mono8"):
        mono8_to_mask("bgr8", 6, 10, 30, bytes(180))


def test_to_byte_array_copies_non_contiguous_images():
    view = BGR[:, ::2]
    data = to_byte_array(view)
    assert data.typecode == "B" and bytes(data) == np.ascontiguousarray(view).tobytes()
