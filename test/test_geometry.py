"""Geometry conventions: angle direction, pixel coverage, and round trips between boxes and masks."""

import math

import numpy as np
import pytest

from segtrack_core.geometry import (box_corners, clip_box, fill_polygon, mask_to_box, mask_to_rotated_box,
                                    normalize_angle, polygon_to_box, polygon_to_rotated_box,
                                    rotated_box_corners, rotated_box_to_box, target_to_mask)
from segtrack_core.metrics import polygon_iou
from segtrack_core.types import Box, MaskTarget, RotatedBox


def long_axis(rbox: RotatedBox) -> np.ndarray:
    a = rbox.angle
    return np.array([math.cos(a), math.sin(a)]) if rbox.w >= rbox.h else np.array([-math.sin(a), math.cos(a)])


def test_positive_angle_turns_the_width_axis_from_x_towards_y():
    rbox = RotatedBox(50, 50, 40, 10, math.radians(30))
    corners = rotated_box_corners(rbox)
    width_edge = corners[1] - corners[0]
    assert width_edge == pytest.approx(40 * np.array([math.cos(math.radians(30)), math.sin(math.radians(30))]))
    assert width_edge[1] > 0  # +y: downwards in the image


def test_rotated_box_of_a_down_right_diagonal_has_angle_plus_45():
    # Pixels on the diagonal y = x run from top-left to bottom-right of the image.
    mask = np.zeros((60, 60), bool)
    idx = np.arange(10, 50)
    mask[idx, idx] = True
    mask[idx[:-1] + 1, idx[:-1]] = True  # 2 px thick
    rbox = mask_to_rotated_box(mask)
    assert abs(long_axis(rbox) @ (np.array([1.0, 1.0]) / math.sqrt(2))) == pytest.approx(1.0, abs=1e-3)
    long_angle = rbox.angle if rbox.w >= rbox.h else rbox.angle + math.pi / 2
    assert math.remainder(long_angle - math.pi / 4, math.pi) == pytest.approx(0.0, abs=1e-3)
    assert -math.pi / 2 <= rbox.angle < math.pi / 2


@pytest.mark.parametrize("degrees", [-80, -45, -10, 0, 20, 45, 70, 89])
def test_polygon_to_rotated_box_recovers_the_rectangle(degrees):
    rbox = RotatedBox(120.5, 80.25, 60, 24, math.radians(degrees))
    recovered = polygon_to_rotated_box(rotated_box_corners(rbox))
    assert -math.pi / 2 <= recovered.angle < math.pi / 2
    assert (recovered.cx, recovered.cy) == pytest.approx((rbox.cx, rbox.cy), abs=1e-3)
    assert sorted((recovered.w, recovered.h)) == pytest.approx([24, 60], abs=1e-3)
    assert abs(long_axis(recovered) @ long_axis(rbox)) == pytest.approx(1.0, abs=1e-5)
    assert polygon_iou(rotated_box_corners(recovered), rotated_box_corners(rbox)) == pytest.approx(1.0, abs=1e-4)


def test_normalize_angle_keeps_the_rectangle():
    rbox = RotatedBox(10, 10, 8, 4, math.radians(170))
    normalized = normalize_angle(rbox)
    assert -math.pi / 2 <= normalized.angle < math.pi / 2
    assert polygon_iou(rotated_box_corners(normalized), rotated_box_corners(rbox)) == pytest.approx(1.0)


def test_mask_to_box_covers_pixel_edges():
    mask = np.zeros((20, 30), bool)
    mask[5:10, 3:13] = True
    assert mask_to_box(mask) == Box(3, 5, 10, 5)
    assert mask_to_box(np.zeros((4, 4), bool)) is None


def test_box_fills_exactly_its_pixels_and_mask_to_box_inverts_it():
    shape = (30, 40)
    for box in (Box(3, 5, 10, 5), Box(0, 0, 40, 30), Box(7, 2, 1, 1)):
        mask = target_to_mask(box, shape)
        assert mask.sum() == box.w * box.h
        assert mask_to_box(mask) == box


def test_mask_to_rotated_box_round_trips_axis_aligned_rectangles():
    rng = np.random.default_rng(0)
    shape = (40, 50)
    for _ in range(20):
        y0, x0 = rng.integers(0, 20, size=2)
        h, w = rng.integers(1, 20, size=2)
        mask = np.zeros(shape, bool)
        mask[y0:y0 + h, x0:x0 + w] = True
        rbox = mask_to_rotated_box(mask)
        assert np.array_equal(target_to_mask(rbox, shape), mask)
        box = rotated_box_to_box(rbox)
        assert box.as_tuple() == pytest.approx(mask_to_box(mask).as_tuple(), abs=1e-3)
    assert mask_to_rotated_box(np.zeros(shape, bool)) is None


def test_filled_rotated_box_has_its_area_and_the_same_box():
    rbox = RotatedBox(100, 80, 70, 30, math.radians(25))
    mask = target_to_mask(rbox, (200, 200))
    assert mask.sum() == pytest.approx(70 * 30, rel=0.02)
    recovered = mask_to_rotated_box(mask)
    # Whole pixels along the edges: the enclosing rectangle is up to ~1.5 px larger, same center and axes.
    assert (recovered.cx, recovered.cy) == pytest.approx((100, 80), abs=0.3)
    assert abs(long_axis(recovered) @ long_axis(rbox)) == pytest.approx(1.0, abs=1e-3)
    long_side, short_side = max(recovered.w, recovered.h), min(recovered.w, recovered.h)
    assert 70 <= long_side <= 71.5 and 30 <= short_side <= 31.5


def test_polygon_helpers():
    polygon = np.array([291.8, 203.6, 396.4, 264.3, 442.2, 185.4, 337.6, 124.7])  # a VOT region
    box = polygon_to_box(polygon)
    assert box.as_tuple() == pytest.approx((291.8, 124.7, 150.4, 139.6))
    assert np.array_equal(box_corners(box)[0], [box.x, box.y])
    filled = fill_polygon(polygon, (360, 480))
    assert filled.sum() == pytest.approx(polygon_iou(polygon, polygon) * 120.9 * 90.7, rel=0.03)
    assert np.array_equal(target_to_mask(MaskTarget(filled.astype(np.uint8) * 255), filled.shape), filled)


def test_clip_box():
    assert clip_box(Box(-5, -5, 10, 10), (20, 20)) == Box(0, 0, 5, 5)
    assert clip_box(Box(30, 30, 5, 5), (20, 20)) is None
