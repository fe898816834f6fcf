"""Metrics on hand-made cases whose answers are worked out by hand."""

import math

import numpy as np
import pytest

from segtrack_core.metrics import (boundary_map, boundary_tolerance, contour_accuracy, disk, polygon_area,
                                   box_iou, off_target_share, polygon_iou, region_similarity, success_auc)


def rect_mask(shape, y0, y1, x0, x1):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


def square(cx, cy, half, angle=0.0):
    c, s = math.cos(angle), math.sin(angle)
    corners = [(-half, -half), (half, -half), (half, half), (-half, half)]
    return np.array([(cx + c * x - s * y, cy + s * x + c * y) for x, y in corners])


# --- J ----------------------------------------------------------------------------------------------

def test_j_of_overlapping_rectangles_is_intersection_over_union():
    a = rect_mask((20, 30), 0, 10, 0, 10)
    b = rect_mask((20, 30), 0, 10, 5, 15)  # overlap 50 px, union 150 px
    assert region_similarity(a, b) == pytest.approx(1 / 3)
    assert region_similarity(a, a) == 1.0
    assert region_similarity(a, rect_mask((20, 30), 10, 20, 20, 30)) == 0.0


def test_j_empty_conventions():
    empty = np.zeros((8, 8), bool)
    full = np.ones((8, 8), bool)
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(empty, full) == 0.0
    assert region_similarity(full, empty) == 0.0


def test_metrics_reject_masks_of_different_size():
    with pytest.raises(ValueError):
        region_similarity(np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(ValueError):
        contour_accuracy(np.zeros((4, 5)), np.zeros((5, 4)))


# --- F ----------------------------------------------------------------------------------------------

def test_boundary_map_follows_seg2bmap():
    mask = rect_mask((6, 6), 1, 4, 1, 4)  # 3x3 square at rows/cols 1..3
    expected = np.zeros((6, 6), bool)
    # A pixel is boundary when it differs from its east, south or south-east neighbour: the outline
    # sits half a pixel towards the origin (row 0 and col 0 outside; col 3 and row 3 inside).
    expected[0, 0:4] = True
    expected[1:4, 0] = True
    expected[1:4, 3] = True
    expected[3, 1:4] = True
    assert np.array_equal(boundary_map(mask), expected)
    # The image border is not a boundary: a full mask has none.
    assert not boundary_map(np.ones((5, 7), bool)).any()


def test_boundary_tolerance_and_disk():
    assert boundary_tolerance((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert boundary_tolerance((100, 100)) == 2  # ceil(1.13)
    assert boundary_tolerance((100, 100), bound_th=3) == 3
    assert np.array_equal(disk(2), np.array([[0, 0, 1, 0, 0],
                                             [0, 1, 1, 1, 0],
                                             [1, 1, 1, 1, 1],
                                             [0, 1, 1, 1, 0],
                                             [0, 0, 1, 0, 0]], np.uint8))


def test_f_matches_boundaries_within_the_tolerance_only():
    shape = (100, 100)  # tolerance 2 px
    gt = rect_mask(shape, 0, 100, 0, 50)  # boundary: column 49
    assert contour_accuracy(gt, gt) == 1.0
    assert contour_accuracy(rect_mask(shape, 0, 100, 0, 52), gt) == 1.0  # 2 px away: matched
    assert contour_accuracy(rect_mask(shape, 0, 100, 0, 53), gt) == 0.0  # 3 px away: not


def test_f_partial_match_has_the_hand_computed_value():
    shape = (100, 100)
    gt = rect_mask(shape, 0, 100, 0, 50)  # boundary: column 49, rows 0..99 (100 px)
    pred = gt.copy()
    pred[50:, 50:60] = 255  # lower half extends to column 59
    # pred boundary: col 49 rows 0..48 (49) + row 49 cols 49..59 (11) + col 59 rows 50..99 (50) = 110 px;
    # within 2 px of col 49: col 49 rows 0..48 and row 49 cols 49..51 -> 52 matched (precision 52/110).
    # gt pixels within 2 px of pred boundary: col 49 rows 0..51 -> 52 (recall 52/100).
    precision, recall = 52 / 110, 52 / 100
    expected = 2 * precision * recall / (precision + recall)
    assert contour_accuracy(pred, gt) == pytest.approx(expected)


def test_f_empty_conventions():
    empty = np.zeros((30, 30), bool)
    obj = rect_mask((30, 30), 5, 15, 5, 15)
    assert contour_accuracy(empty, empty) == 1.0
    assert contour_accuracy(empty, obj) == 0.0
    assert contour_accuracy(obj, empty) == 0.0


# --- polygon IoU ------------------------------------------------------------------------------------

def test_iou_of_square_and_its_45_degree_rotation_is_one_over_sqrt2():
    # The intersection is a regular octagon of inradius 1: area 8(sqrt2 - 1); union 8 - that.
    assert polygon_iou(square(0, 0, 1), square(0, 0, 1, math.pi / 4)) == pytest.approx(1 / math.sqrt(2))


def test_iou_of_rotated_squares_shifted_along_their_axis():
    angle = math.radians(30)
    a = square(10, 10, 2, angle)
    b = square(10 + 2 * math.cos(angle), 10 + 2 * math.sin(angle), 2, angle)  # half overlap along width
    assert polygon_iou(a, b) == pytest.approx(1 / 3)
    assert polygon_iou(a, a[::-1]) == pytest.approx(1.0)  # orientation does not matter
    assert polygon_iou(a, square(30, 30, 2)) == 0.0


def test_iou_is_bounded_by_the_image_like_vot():
    inside = np.array([0, 0, 10, 0, 10, 10, 0, 10], float)
    straddling = np.array([-10, 0, 10, 0, 10, 10, -10, 10], float)
    assert polygon_iou(inside, straddling) == pytest.approx(0.5)
    assert polygon_iou(inside, straddling, bounds=(100, 100)) == pytest.approx(1.0)


def test_iou_with_a_non_convex_polygon():
    l_shape = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], float)  # area 3
    two_by_two = square(1, 1, 1)
    assert polygon_area(l_shape) == pytest.approx(3.0)
    assert polygon_iou(l_shape, two_by_two) == pytest.approx(0.75)
    assert polygon_iou(two_by_two, l_shape) == pytest.approx(0.75)


def test_iou_of_undefined_or_degenerate_polygons_is_zero():
    assert polygon_iou(np.full(8, np.nan), square(0, 0, 1)) == 0.0
    assert polygon_iou(np.zeros(8), np.zeros(8)) == 0.0


def test_box_iou_success_auc_and_off_target_share():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    # thresholds 0, 0.05, ..., 1: IoU 1 clears 20 of 21 (not "> 1"), IoU 0 clears none
    assert success_auc(np.array([1.0])) == pytest.approx(20 / 21)
    assert success_auc(np.array([0.0])) == 0.0
    assert success_auc(np.array([0.5, 0.0])) == pytest.approx(0.5 * 10 / 21)
    assert off_target_share(np.array([0.0, 0.05, 0.1, 0.9])) == pytest.approx(0.5)
