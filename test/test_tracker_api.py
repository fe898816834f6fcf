"""The tracker interface: every backend rejects bad input with a typed error and keeps its state."""

from __future__ import annotations

import math

import numpy as np
import pytest

import segtrack_core as st
from segtrack_core.errors import (ConfigError, InvalidFrameError, InvalidTargetError, NotInitializedError,
                                  UnknownBackendError)

BACKENDS = ["csrt", "d3s2"]


@pytest.fixture(scope="module", params=BACKENDS)
def tracker(request):
    options = {"runtime": {"device": "cpu"}} if request.param == "d3s2" else {}
    return st.create_tracker(request.param, **options)


@pytest.fixture(scope="module")
def scene():
    """A textured 240x320 frame with a distinct red square target at (120, 80) size 60x50."""
    rng = np.random.default_rng(1)
    frame = (rng.random((240, 320, 3)) * 80 + 60).astype(np.uint8)
    frame[80:130, 120:180] = (30, 30, 220)
    return frame


def test_track_before_initialize_raises(scene):
    tracker = st.create_tracker("csrt")
    with pytest.raises(NotInitializedError):
        tracker.track(scene)


@pytest.mark.parametrize("target, message", [
    (st.Box(400, 300, 20, 20), "outside"),
    (st.Box(-50, -50, 20, 20), "outside"),
    (st.Box(10, 10, 0, 20), "positive size"),
    (st.Box(10, 10, -5, 20), "positive size"),
    (st.Box(float("nan"), 10, 5, 5), "non-finite"),
    (st.RotatedBox(100, 100, 10, float("inf"), 0.0), "non-finite"),
    (st.RotatedBox(-500, 100, 10, 10, 0.3), "outside"),
    (st.MaskTarget(np.zeros((240, 320), bool)), "empty"),
    (st.RotatedBox(50, 50, 30, 0.4, 0.0), "covers no pixel"),
    (st.Box(10.6, 10, 0.3, 5), "covers no pixel"),
    (st.MaskTarget(np.ones((100, 100), bool)), "frame is 320x240"),
    ("10,10,5,5", "unsupported target"),
])
def test_bad_targets_raise_typed_errors(tracker, scene, target, message):
    with pytest.raises(InvalidTargetError, match=message):
        tracker.initialize(scene, target)


@pytest.mark.parametrize("frame, message", [
    (np.zeros((240, 320, 3), np.float32), "uint8"),
    (np.zeros((240, 320), np.uint8), "HxWx3"),
    (np.zeros((240, 320, 4), np.uint8), "HxWx3"),
    (np.zeros((0, 320, 3), np.uint8), "too small"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_frames_raise_typed_errors(tracker, scene, frame, message):
    with pytest.raises(InvalidFrameError, match=message):
        tracker.initialize(frame, st.Box(120, 80, 60, 50))


def test_bad_frame_mid_track_keeps_target(tracker, scene):
    tracker.initialize(scene, st.Box(120, 80, 60, 50))
    with pytest.raises(InvalidFrameError, match="size changed"):
        tracker.track(np.zeros((120, 160, 3), np.uint8))
    with pytest.raises(InvalidFrameError):
        tracker.track(scene.astype(np.float64))
    result = tracker.track(scene)  # the target survives the bad frames
    assert result.state is not st.TrackState.LOST
    assert result.box is not None
    cx, cy = result.box.center
    assert abs(cx - 150) < 10 and abs(cy - 105) < 10


def test_result_fields_are_consistent(tracker, scene):
    tracker.initialize(scene, st.MaskTarget(scene[..., 2] > 200))
    result = tracker.track(scene)
    assert result.mask.shape == scene.shape[:2] and result.mask.dtype == bool
    assert 0.0 <= result.score <= 1.0
    assert result.rotated_box is not None and math.isfinite(result.rotated_box.angle)
    assert "total" in result.timings and result.timings["total"] > 0


def test_registry_errors():
    with pytest.raises(UnknownBackendError, match="available"):
        st.create_tracker("no-such-backend")
    with pytest.raises(ConfigError, match="unknown key"):
        st.create_tracker("d3s2", {"not_a_field": 1})
    with pytest.raises(ConfigError, match="expected a number"):
        st.make_config("d3s2", {"features": {"search_scale": "big"}})
    with pytest.raises(ConfigError, match="device"):
        st.create_tracker("d3s2", runtime={"device": "tpu"})
    with pytest.raises(ConfigError, match="small_target_side"):
        st.make_config("d3s2", {"segmentation": {"small_target_side": -1}})
    with pytest.raises(ConfigError, match="search_scale must be >= 1.5"):
        st.make_config("d3s2", {"box_init": {"search_scale": 1.0}})
    with pytest.raises(ConfigError, match="segment_agreement in"):
        st.make_config("d3s2", {"motion": {"segment_agreement": 1.5}})
    assert {"csrt", "d3s2"} <= set(st.available_backends())


def test_config_from_yaml(tmp_path):
    path = tmp_path / "tracker.yaml"
    path.write_text("runtime:\n  device: cpu\nfeatures:\n  search_scale: 5.0\ngim:\n  top_k: 5\n")
    config = st.make_config("d3s2", path)
    assert config.features.search_scale == 5.0 and config.gim.top_k == 5 and config.runtime.device == "cpu"


def test_box_covering_the_whole_frame_initialises(tracker, scene):
    tracker.initialize(scene, st.Box(0, 0, scene.shape[1], scene.shape[0]))
    assert tracker.track(scene).mask.shape == scene.shape[:2]


@pytest.mark.parametrize("failing_step", ["segtrack_core.trackers.d3s2.box_init.box_proxy_mask",
                                          "segtrack_core.models.gem.DiscriminativeFilter.initialize"])
def test_a_failed_initialisation_keeps_the_current_target(scene, monkeypatch, failing_step):
    """A failure deep inside initialisation (GrabCut, the GEM's training, out of memory) after work on
    the new target has started leaves the tracker following its old target, exactly as before."""
    tracker, untouched = (st.create_tracker("d3s2", runtime={"device": "cpu"}) for _ in range(2))
    for t in (tracker, untouched):
        t.initialize(scene, st.Box(120, 80, 60, 50))
        t.track(scene)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(failing_step, out_of_memory)
    with pytest.raises(MemoryError):
        tracker.initialize(scene, st.Box(100, 60, 70, 60))
    monkeypatch.undo()
    assert tracker.initialized
    moved = np.roll(scene, (3, 4), axis=(0, 1))
    for _ in range(2):
        mine, reference = tracker.track(moved), untouched.track(moved)
        assert np.array_equal(mine.mask, reference.mask) and mine.box == reference.box
        assert mine.score == reference.score


@pytest.mark.parametrize("target", [
    st.Box(160 - 5e11, 120 - 5e11, 1e12, 1e12),
    st.Box(160 - 5e299, 120 - 5e299, 1e300, 1e300),
    st.Box(-1e6, 100, 3e6, 30),
    st.RotatedBox(160, 120, 1e12, 1e12, 0.3),
    st.RotatedBox(160, 120, 1e300, 1e300, 0.3),
    st.RotatedBox(160, 120, 1e9, 40, -0.2),
])
def test_boxes_far_larger_than_the_image_are_clipped_before_any_work(tracker, scene, target, monkeypatch):
    # Sizes of 1e6-1e9 used to take minutes and gigabytes: the backend must only ever see the clipped box.
    tracker.initialize(scene, st.Box(120, 80, 60, 50))
    given = []
    backend_initialize = tracker._initialize

    def recording_initialize(frame, validated):
        given.append(validated)
        return backend_initialize(frame, validated)

    monkeypatch.setattr(tracker, "_initialize", recording_initialize)
    tracker.initialize(scene, target)
    result = tracker.track(scene)
    height, width = scene.shape[:2]
    assert len(given) == 1 and type(given[0]) is type(target)
    seen = given[0]
    if isinstance(seen, st.Box):
        assert 0 <= seen.x and 0 <= seen.y and seen.x + seen.w <= width and seen.y + seen.h <= height, seen
    else:  # cut along its own axes: no side longer than the image's diagonal, its centre in the image
        assert seen.angle == target.angle and max(seen.w, seen.h) <= math.hypot(width, height) + 1e-6, seen
        assert 0 <= seen.cx <= width and 0 <= seen.cy <= height, seen
    assert result.mask.shape == scene.shape[:2]


def test_validate_target_clips_to_the_image_and_keeps_the_visible_pixels():
    from segtrack_core.geometry import target_to_mask
    from segtrack_core.validation import validate_target

    shape = (240, 320)
    assert validate_target(st.Box(-1e300, -5, 2e300, 1e12), shape) == st.Box(0, 0, 320, 240)
    assert validate_target(st.Box(10, 20, 30, 40), shape) == st.Box(10, 20, 30, 40)
    huge = validate_target(st.RotatedBox(160, 120, 1e300, 1e300, 0.3), shape)
    assert huge.angle == 0.3 and max(huge.w, huge.h) <= math.hypot(320, 240) + 1e-6
    assert target_to_mask(huge, shape).all()
    inside = st.RotatedBox(100, 100, 40, 20, 0.5)
    assert validate_target(inside, shape) == inside
    hanging = st.RotatedBox(300, 60, 200, 30, 0.4)  # reaches past the right edge
    clipped = validate_target(hanging, shape)
    assert clipped.w < hanging.w and clipped.angle == hanging.angle
    assert np.array_equal(target_to_mask(clipped, shape), target_to_mask(hanging, shape))


def test_float16_box_fields_are_used_as_floats(tracker, scene):
    from segtrack_core.validation import validate_target

    half = st.Box(*(np.float16(v) for v in (0, 0, 320, 240)))  # w*h overflows float16
    checked = validate_target(half, scene.shape[:2])
    assert all(type(v) is float for v in checked.as_tuple())
    tracker.initialize(scene, half)
    tracker.initialize(scene, st.RotatedBox(*(np.float16(v) for v in (150, 105, 60, 50, 0.1))))
    assert tracker.track(scene).mask.shape == scene.shape[:2]


@pytest.mark.parametrize("shape", [(8, 4000, 3), (4000, 8, 3)])
def test_too_thin_frames_are_refused_and_keep_the_target(tracker, scene, shape):
    tracker.initialize(scene, st.Box(120, 80, 60, 50))
    thin = np.random.default_rng(2).integers(0, 255, shape, dtype=np.uint8)
    with pytest.raises(InvalidFrameError, match="too small"):
        tracker.initialize(thin, st.Box(0, 0, shape[1], shape[0]))
    assert tracker.track(scene).state is not st.TrackState.LOST


@pytest.mark.parametrize("shape", [(16, 4000, 3), (4000, 16, 3)])
def test_full_frame_box_in_a_very_wide_or_tall_frame_works_or_is_refused(tracker, scene, shape):
    tracker.initialize(scene, st.Box(120, 80, 60, 50))
    thin = np.random.default_rng(3).integers(0, 255, shape, dtype=np.uint8)
    try:
        tracker.initialize(thin, st.Box(0, 0, shape[1], shape[0]))
    except InvalidTargetError:
        assert tracker.track(scene).state is not st.TrackState.LOST  # refused: the old target is kept
    else:
        assert tracker.track(thin).mask.shape == shape[:2]


def test_a_backend_refusing_a_target_keeps_the_current_one(scene, monkeypatch):
    tracker = st.create_tracker("csrt")
    tracker.initialize(scene, st.Box(120, 80, 60, 50))
    with pytest.raises(InvalidTargetError, match="CSRT cannot track"):
        tracker.initialize(scene, st.Box(0, 100, 320, 5))  # too thin for CSRT's filters
    result = tracker.track(scene)
    assert result.state is st.TrackState.TRACKING and abs(result.box.center[0] - 150) < 10


def assert_result_invariants(result, shape):
    """What every backend reports on every frame: boxes inside the image with a nonzero size (a rotated box
    within the image's extent along its own axes and overlapping it), a mask whenever it is TRACKING."""
    from segtrack_core.geometry import clip_rotated_box, rotated_box_to_box

    height, width = shape
    if result.state is st.TrackState.LOST:
        assert result.box is None and result.rotated_box is None and not result.mask.any()
        return
    box, rotated = result.box, result.rotated_box
    assert box is not None and rotated is not None
    assert box.w > 0 and box.h > 0 and rotated.w > 0 and rotated.h > 0, (box, rotated)
    assert 0 <= box.x and 0 <= box.y and box.x + box.w <= width and box.y + box.h <= height, box
    bounds = rotated_box_to_box(rotated)
    assert bounds.x < width and bounds.y < height and bounds.x + bounds.w > 0 and bounds.y + bounds.h > 0, rotated
    clipped = clip_rotated_box(rotated, shape)
    assert clipped is not None and np.allclose(clipped.as_tuple(), rotated.as_tuple(), atol=0.01), rotated
    if result.state is st.TrackState.TRACKING:
        assert result.mask.any(), "a TRACKING result with an empty mask"


def test_a_full_frame_box_on_a_16_pixel_high_gradient_reports_no_box_outside_and_no_empty_tracking():
    tracker = st.create_tracker("d3s2", runtime={"device": "cpu"})
    gradient = np.repeat(np.linspace(0, 255, 4000).astype(np.uint8)[None, :, None], 16, axis=0)
    frame = np.ascontiguousarray(np.repeat(gradient, 3, axis=2))
    tracker.initialize(frame, st.Box(0, 0, 4000, 16))
    for _ in range(3):  # used to be TRACKING (score 0.5) with an empty mask and a box above the image
        assert_result_invariants(tracker.track(frame), frame.shape[:2])


def test_a_huge_rotated_box_reports_no_box_outside_and_no_empty_tracking(load_davis_frames):
    frames, _ = load_davis_frames("car-shadow", 3)
    tracker = st.create_tracker("d3s2", runtime={"device": "cpu"})
    tracker.initialize(frames[0], st.RotatedBox(427, 240, 1e9, 1e9, 0.7))
    for frame in frames[1:]:  # used to be TRACKING with an empty mask and a 1327x1322 box around the image
        assert_result_invariants(tracker.track(frame), frames[0].shape[:2])


def test_random_targets_keep_the_result_invariants():
    """A small fuzz: boxes and rotated boxes of any size, anywhere near a small frame (valid ones), then a
    few frames of a moving scene; every result must keep the invariants. (CSRT clips its own boxes and its
    mask is its box: D3S2, which coasts on predicted boxes, is the one to fuzz.)"""
    # A small search region and one GrabCut run: the same code paths, fast enough for 16 targets.
    tracker = st.create_tracker("d3s2", {"features": {"input_size": 96}, "box_init": {"grabcut_runs": 1}},
                                runtime={"device": "cpu"})
    rng = np.random.default_rng(7)
    height, width = 48, 64
    scene = (rng.random((height, width, 3)) * 80 + 60).astype(np.uint8)
    scene[16:32, 24:44] = (30, 30, 220)
    cases = 0
    while cases < 16:
        cx, cy = rng.uniform(-0.5, 1.5) * width, rng.uniform(-0.5, 1.5) * height
        w, h = np.exp(rng.uniform(np.log(2), np.log(4 * width), 2))
        target = (st.RotatedBox(cx, cy, w, h, rng.uniform(-math.pi, math.pi)) if cases % 2
                  else st.Box(cx - w / 2, cy - h / 2, w, h))
        try:
            tracker.initialize(scene, target)
        except InvalidTargetError:
            continue  # outside the image or covering no pixel
        cases += 1
        for step in (1, 2):
            frame = np.roll(scene, (step, 2 * step), axis=(0, 1))
            assert_result_invariants(tracker.track(frame), (height, width))


@pytest.mark.parametrize("box, rotated, expected_box, expected_angle", [
    (st.Box(-30, 10, 50, 20), None, st.Box(0, 10, 20, 20), 0.0),  # partly left of the image
    (st.Box(-80, 10, 50, 20), None, st.Box(0, 10, 1, 20), 0.0),  # wholly left of it: the edge's pixel column
    (st.Box(70, 50, 10, 5), None, st.Box(63, 47, 1, 1), 0.0),  # beyond the bottom-right corner
    (st.Box(10, 10, 0, 5), None, st.Box(10, 10, 1, 5), 0.0),  # no width
    # A rotated box above the image: its bounding box, cut to the top pixel row, angle 0.
    (None, st.RotatedBox(32, -40, 20, 10, 0.4), st.Box(20.842, 0, 22.316, 1), 0.0),
    # One reaching past the right edge is cut along its own axes, keeping its angle; its box too.
    (None, st.RotatedBox(60, 24, 40, 10, 0.3), st.Box(39.416, 13.313, 24.584, 21.374), 0.3),
])
def test_every_backends_boxes_are_cut_to_the_image(box, rotated, expected_box, expected_angle):
    """Tracker.track, not each backend, keeps reported boxes inside the image (a predicted box may leave it)."""
    from segtrack_core.trackers.base import Tracker

    class Scripted(Tracker):
        def _initialize(self, frame, target):
            return None

        def _adopt(self, state):
            pass

        def _track(self, frame):
            return st.TrackResult(np.zeros(frame.shape[:2], bool), 0.4, box, rotated, st.TrackState.UNCERTAIN)

    tracker = Scripted()
    frame = np.zeros((48, 64, 3), np.uint8)
    tracker.initialize(frame, st.Box(10, 10, 20, 20))
    result = tracker.track(frame)
    assert_result_invariants(result, (48, 64))
    assert np.allclose(result.box.as_tuple(), expected_box.as_tuple(), atol=0.01), result.box
    assert result.rotated_box.angle == expected_angle
