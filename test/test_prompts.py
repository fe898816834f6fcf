"""Click prompts (a core target type) -> target mask, on real DAVIS frames with ground-truth masks."""

import cv2
import numpy as np
import pytest

from segtrack_core.errors import InvalidFrameError, InvalidTargetError
import segtrack_core as st
from segtrack_core.geometry import mask_to_box
from segtrack_core.metrics import region_similarity
from segtrack_core.prompts import box_proxy_mask, points_to_mask
from segtrack_core.types import PointsTarget


def interior_points(truth: np.ndarray, count: int, seed: int = 0) -> list[list[float]]:
    """Clicks well inside the object, as a user would place them."""
    inner = cv2.erode(truth.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    ys, xs = np.nonzero(inner)
    if count == 1:
        cx, cy = xs.mean(), ys.mean()
        i = np.argmin((xs - cx) ** 2 + (ys - cy) ** 2)
        return [[float(xs[i]), float(ys[i])]]
    idx = np.random.default_rng(seed).choice(xs.size, count, replace=False)
    return np.stack([xs[idx], ys[idx]], axis=1).astype(float).tolist()


@pytest.mark.parametrize("sequence", ["car-shadow", "blackswan"])
@pytest.mark.parametrize("count", [1, 3])
def test_clicks_on_the_object_segment_it(load_davis_frames, sequence, count):
    (frame,), (truth,) = load_davis_frames(sequence, 1)
    points = interior_points(truth, count)
    mask = points_to_mask(frame, PointsTarget(points))
    assert mask.shape == truth.shape and mask.dtype == bool
    assert region_similarity(mask, truth) > 0.55
    for x, y in points:
        assert mask[int(y), int(x)]


def test_background_clicks_are_excluded(load_davis_frames):
    (frame,), (truth,) = load_davis_frames("car-shadow", 1)
    fg = interior_points(truth, 3)
    background = np.argwhere(~cv2.dilate(truth.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool))
    # A few background clicks near the object: they must not end up in the mask.
    ys, xs = background[:, 0], background[:, 1]
    near = np.argsort(np.hypot(xs - 480, ys - 190))[:200:50]
    bg = [[float(xs[i]), float(ys[i])] for i in near]
    mask = points_to_mask(frame, PointsTarget(fg, bg))
    for x, y in bg:
        assert not mask[int(y), int(x)]
    assert region_similarity(mask, truth) > 0.5


def test_errors_are_typed(load_davis_frames):
    (frame,), _ = load_davis_frames("car-shadow", 1)
    with pytest.raises(InvalidTargetError, match="at least one foreground point"):
        points_to_mask(frame, PointsTarget(()))
    with pytest.raises(InvalidTargetError, match="outside"):
        points_to_mask(frame, PointsTarget(((900.0, 10.0),)))
    with pytest.raises(InvalidTargetError, match="finite"):
        points_to_mask(frame, PointsTarget(((float("nan"), 10.0),)))
    with pytest.raises(InvalidTargetError, match="pairs"):
        points_to_mask(frame, PointsTarget(((1.0, 2.0, 3.0),)))
    with pytest.raises(InvalidFrameError):
        points_to_mask(frame[:, :, 0], PointsTarget(((10.0, 10.0),)))


def test_a_tracker_starts_from_points_and_keeps_its_target_on_bad_points(load_davis_frames):
    frames, truths = load_davis_frames("car-shadow", 3)
    tracker = st.create_tracker("csrt")
    tracker.initialize(frames[0], PointsTarget(tuple(map(tuple, interior_points(truths[0], 3)))))
    result = tracker.track(frames[1])
    assert result.state is not st.TrackState.LOST and region_similarity(result.mask, truths[1]) > 0.5
    with pytest.raises(InvalidTargetError):
        tracker.initialize(frames[1], PointsTarget(((5000.0, 1.0),)))
    assert region_similarity(tracker.track(frames[2]).mask, truths[2]) > 0.5


def _box_rect(truth: np.ndarray) -> tuple[int, int, int, int]:
    return tuple(int(round(v)) for v in mask_to_box(truth).as_tuple())


def test_box_proxy_mask_is_the_same_whatever_opencvs_random_state(load_davis_frames):
    (frame,), (truth,) = load_davis_frames("car-shadow", 1)
    masks = []
    for state in (1, 2, 3):
        cv2.setRNGSeed(state)  # as if other GrabCut users had drawn from OpenCV's global RNG before
        masks.append(box_proxy_mask(frame, _box_rect(truth), 360, 3, runs=3))
    assert all(np.array_equal(m, masks[0]) for m in masks[1:])
    assert region_similarity(masks[0], truth) > 0.7


def test_grabcut_from_an_estimate_drops_the_background_it_encloses(load_davis_frames):
    (frame,), (truth,) = load_davis_frames("blackswan", 1)
    # The object's convex hull: a first estimate that also takes in the water between the neck and the back.
    hull = cv2.convexHull(np.argwhere(truth)[:, ::-1].astype(np.int32))
    estimate = cv2.fillPoly(np.zeros(truth.shape, np.uint8), [hull], 1) > 0
    refined = box_proxy_mask(frame, _box_rect(truth), 360, 3, estimate=estimate, runs=3)
    assert region_similarity(refined, truth) > region_similarity(estimate, truth) + 0.08


@pytest.fixture(scope="module")
def red_square():
    """A textured 100x100 frame with a red 30x20 square against its top edge (columns 30-59, rows 0-19)."""
    frame = (np.random.default_rng(0).random((100, 100, 3)) * 80 + 60).astype(np.uint8)
    frame[:20, 30:60] = (30, 30, 220)
    truth = np.zeros((100, 100), bool)
    truth[:20, 30:60] = True
    return frame, truth


def test_grabcut_without_background_gives_no_proxy(red_square):
    frame, _ = red_square
    # An estimate over the whole window leaves GrabCut no background sample (OpenCV used to assert).
    assert box_proxy_mask(frame, (10, 10, 50, 50), 360, 3, estimate=np.ones((100, 100), bool)) is None
    assert box_proxy_mask(frame, (-20, -20, 140, 140), 360, 3) is None  # the box fills the image


@pytest.mark.parametrize("max_side", [360, 40])  # full resolution and downscaled
def test_a_box_reaching_past_the_top_left_segments_its_visible_part(red_square, max_side):
    frame, truth = red_square
    # A rotated box's bounding box may start above the image: its seeds used to wrap to the bottom rows.
    for box in [(25, -10, 40, 35), (25, -40, 40, 65), (-15, -10, 80, 35)]:
        mask = box_proxy_mask(frame, box, max_side, 3)
        assert mask is not None and region_similarity(mask, truth) > 0.8, box


def test_clicks_spanning_the_whole_image_give_a_mask(red_square):
    frame, _ = red_square
    # Their padded rectangle covers the whole image: no background for GrabCut, the rectangle is the mask.
    mask = points_to_mask(frame, PointsTarget(((2.0, 2.0), (97.0, 97.0))))
    assert mask[2, 2] and mask[97, 97]
