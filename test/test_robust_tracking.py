"""The default tracker on the failure classes of real footage: short excerpts of the dev sequences (a
small target seen from a drone, a full occlusion, look-alike players) scored as `segtrack eval` scores
them, and a target that leaves the frame and comes back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import segtrack_core as st
from segtrack_core.evaluation.datasets import DavisSequence, VotSequence, discover_sequences
from segtrack_core.evaluation.runner import evaluate_sequence
from segtrack_core.metrics import box_iou, region_similarity


@pytest.fixture(scope="module")
def tracker():
    return st.create_tracker("d3s2", runtime={"device": "cpu"})


# (sequence, first frame, frames, mean-IoU floor, most off-target frames): floors sit a little below the
# figures measured with the default config.
EXCERPTS = [
    ("boxes/person12_1", 0, 60, 0.65, 0),  # a 34x85 person seen from a drone
    # A pole hides the runner over frames ~66-80 (lost there is right), then the runner must be found.
    ("boxes/Jogging-1", 55, 50, 0.5, 14),
    ("boxes/Basketball", 0, 80, 0.55, 8),  # players in the same shirts around the target
]


def test_a_small_face_in_a_crowd_keeps_its_mask(tracker, data_root):
    """marathon6's target is a runner's face of about 14x25 px, another face close by: its cells are
    upsampled blur, so without the small-target core its mask vanished and it was lost by frame 5."""
    (full,) = discover_sequences(data_root, ["vots2023/marathon6"])
    excerpt = DavisSequence(full.name, full.frame_paths[:30], full.mask_paths[:30])
    result = evaluate_sequence(excerpt, {"d3s2": tracker}, init="box")["d3s2"]
    j = np.array([r.measures["j"] for r in result.frames])
    assert j.mean() >= 0.4 and (j < 0.1).sum() <= 5, np.round(j, 2)
    assert all(r.state != "lost" for r in result.frames)


def test_a_target_walking_past_look_alikes_does_not_take_them_into_its_mask(tracker, data_root):
    """monkey's target walks into a group of sitting monkeys from about frame 25: their cells look like its
    own, and without the motion evidence the mask spread over them (J 0.55 over frames 25-49, 0.72 with)."""
    (full,) = discover_sequences(data_root, ["vots2023/monkey"])
    excerpt = DavisSequence(full.name, full.frame_paths[:50], full.mask_paths[:50])
    result = evaluate_sequence(excerpt, {"d3s2": tracker}, init="mask")["d3s2"]
    j = np.array([r.measures["j"] for r in result.frames])
    assert j[-25:].mean() >= 0.63, np.round(j, 2)


@pytest.mark.parametrize("name, first, count, floor, max_off", EXCERPTS, ids=[e[0] for e in EXCERPTS])
def test_box_sequence_excerpt_above_floor(tracker, data_root, name, first, count, floor, max_off):
    (full,) = discover_sequences(data_root, [name])
    excerpt = VotSequence(name, full.frame_paths[first:first + count], full.polygons[first:first + count])
    result = evaluate_sequence(excerpt, {"d3s2": tracker}, init="box")["d3s2"]
    ious = np.array([r.measures["iou"] for r in result.frames])
    assert ious.mean() >= floor, np.round(ious, 2)
    assert (ious < 0.1).sum() <= max_off, np.round(ious, 2)
    assert ious[-10:].mean() >= floor, np.round(ious, 2)  # on target at the end


def _sprite_scene(data_root, xs):
    """Frames of a street background with a real object (the black swan, cut out by its mask) pasted at
    horizontal positions ``xs``; returns the frames and the pasted boxes (None when fully outside)."""
    background = cv2.resize(cv2.imread(str(data_root / "boxes" / "Jogging-1" / "imgs" / "00000001.jpg")), (640, 360))
    swan = cv2.imread(str(data_root / "davis2016" / "blackswan" / "frames" / "00000.jpg"))
    mask = cv2.imread(str(data_root / "davis2016" / "blackswan" / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    ys, xs_mask = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs_mask.min(), xs_mask.max() + 1
    sprite = cv2.resize(swan[y0:y1, x0:x1], None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask[y0:y1, x0:x1].astype(np.uint8), sprite.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    h, w = alpha.shape
    top = 200
    frames, boxes = [], []
    for x in xs:
        frame = background.copy()
        a0, a1 = max(0, -x), min(w, 640 - x)
        if a1 > a0:
            region = frame[top:top + h, x + a0:x + a1]
            region[alpha[:, a0:a1]] = sprite[:, a0:a1][alpha[:, a0:a1]]
            boxes.append(st.Box(x + a0, top, a1 - a0, h) if a1 - a0 >= 0.8 * w else None)
        else:
            boxes.append(None)
        frames.append(frame)
    return frames, boxes


def test_reacquires_a_target_that_leaves_and_reenters_the_frame(tracker, data_root):
    out_and_back = list(range(420, 700, 20)) + [700] * 6 + list(range(680, 400, -20))
    frames, boxes = _sprite_scene(data_root, [400] + out_and_back)
    tracker.initialize(frames[0], boxes[0])
    results = [tracker.track(frame) for frame in frames[1:]]
    outside = [r for r, x in zip(results, out_and_back) if x >= 640]
    assert outside and all(r.state is st.TrackState.LOST for r in outside[3:])
    assert all(not r.mask.any() for r in outside if r.state is st.TrackState.LOST)
    back = [(r, b) for r, b in zip(results[-5:], boxes[-5:])]
    assert all(r.state is st.TrackState.TRACKING for r, _ in back), [r.state for r, _ in back]
    assert all(box_iou(r.box.as_tuple(), b.as_tuple()) > 0.5 for r, b in back)


def test_a_hidden_target_is_not_swapped_for_a_look_alike_far_away(tracker, data_root):
    """With the target hidden, its double appears about two target sizes away: a weak frame cannot move the
    tracker there. It coasts where the target was (no mask), and lost_patience such frames are a loss;
    only then may a convincing candidate (this double scores above 0.7) be taken."""
    frames, boxes = _sprite_scene(data_root, [150] * 6)
    (double,), _ = _sprite_scene(data_root, [420])
    tracker.initialize(frames[0], boxes[0])
    for frame in frames[1:]:
        assert tracker.track(frame).state is st.TrackState.TRACKING
    results = [tracker.track(double) for _ in range(tracker.config.confidence.lost_patience)]
    for result in results[:-1]:  # without the far-jump rule these follow the double (TRACKING from frame 2)
        assert result.state is st.TrackState.UNCERTAIN and not result.mask.any()
        assert box_iou(result.box.as_tuple(), boxes[0].as_tuple()) > 0.5
    assert results[-1].state is st.TrackState.LOST


@pytest.fixture(scope="module")
def one_grabcut_tracker():
    # One GrabCut run instead of a vote of three: the same initialisation path at a third of its cost.
    return st.create_tracker("d3s2", {"box_init": {"grabcut_runs": 1}}, runtime={"device": "cpu"})


@pytest.mark.parametrize("angle", [0.58, 0.6, 1.2, 2.0, 2.5])
def test_a_rotated_box_whose_bounding_box_leaves_the_image_initialises(one_grabcut_tracker, load_davis_frames,
                                                                       angle):
    """Around the swan at these angles the rotated box's corners reach above the frame: its bounding box
    starts at y < 0, and GrabCut used to get no foreground seed (cv2.error from initGMMs)."""
    frames, truths = load_davis_frames("blackswan", 2)
    tracker = one_grabcut_tracker
    tracker.initialize(frames[0], st.RotatedBox(318.5, 229, 383, 312, angle))
    result = tracker.track(frames[1])
    assert result.state is not st.TrackState.LOST
    assert region_similarity(result.mask, truths[1]) > 0.4
