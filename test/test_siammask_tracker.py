"""SiamMask tracker: each stage of the official step on DAVIS car-shadow frames 1..9
(tracker_car_shadow.npz, synthetic weights), the result it reports, its states and its refusal to run
without weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from siammask_reference import network_reference, save_official_layout, tracker_reference

from segtrack_core import Box, MaskTarget, RotatedBox, TrackState, create_tracker
from segtrack_core.errors import ConfigError, MissingWeightsError
from segtrack_core.geometry import box_corners, clip_box, mask_to_box, rotated_box_corners
from segtrack_core.trackers.siammask import crop_subwindow, make_anchors, make_window

INIT_BOX = Box(313, 88, 342, 194)
FLIP_BOUND = 10  # mask pixels allowed to differ: up to 91 lie within 1e-4 of seg_thr (fixture README)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return save_official_layout(tmp_path_factory.mktemp("siammask") / "synthetic.pth")


@pytest.fixture(scope="module")
def frames(load_davis_frames):
    return load_davis_frames("car-shadow", 10)[0]


def make(checkpoint, **overrides):
    return create_tracker("siammask", {"weights": str(checkpoint), "runtime": {"device": "cpu"}, **overrides})


@pytest.fixture(scope="module")
def tracker(checkpoint, frames):
    tracker = make(checkpoint)
    tracker.initialize(frames[0], INIT_BOX)
    return tracker


def maxdiff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def test_initialisation_equals_the_official_one(tracker, frames):
    ref = tracker_reference()
    assert np.array_equal(tracker.pos, ref["init_target_pos"]) and np.array_equal(tracker.size, ref["init_target_sz"])
    assert np.array_equal(tracker.avg_chans, ref["avg_chans"])
    assert np.array_equal(make_anchors(), ref["anchor"]) and make_anchors().dtype == np.float32
    assert np.array_equal(make_window(), ref["window"])
    z_crop, subwindow = crop_subwindow(frames[0], tracker.pos, 127, int(ref["s_z"]), tracker.avg_chans)
    assert np.array_equal(z_crop.transpose(2, 0, 1)[None], ref["z_crop"])
    assert np.array_equal(subwindow, ref["z_subwindow"])
    zf = network_reference()["zf"]
    assert maxdiff(tracker.zf.numpy(), zf) <= 1e-4 * np.abs(zf).max() + 1e-5


@pytest.mark.parametrize("t", range(9))
def test_step_reproduces_every_stage(tracker, frames, t):
    ref = {k: v[t] for k, v in tracker_reference().items() if v.ndim and v.shape[0] == 9 and k != "window"}
    assert ref["frame_index"] == t + 1
    tracker.pos, tracker.size = ref["in_target_pos"].copy(), ref["in_target_sz"].copy()
    step = tracker.step(frames[t + 1])
    assert np.array_equal(step.crop_box, ref["crop_box"])
    assert np.array_equal(step.x_crop.transpose(2, 0, 1), ref["x_crop"])
    assert np.array_equal(step.x_subwindow, ref["x_subwindow"])
    assert step.scale_x == pytest.approx(ref["scale_x"], rel=1e-12)
    assert maxdiff(step.score, ref["score"]) <= 1e-5
    assert maxdiff(step.delta, ref["delta"]) <= 1e-3  # crop pixels
    assert maxdiff(step.penalty, ref["penalty"]) <= 1e-5
    assert maxdiff(step.pscore, ref["pscore"]) <= 1e-5
    assert step.best_pscore_id == ref["best_pscore_id"]
    assert step.lr == pytest.approx(ref["lr"], abs=1e-5)
    assert maxdiff(np.r_[step.res_pos, step.res_sz], ref["res_xywh_before_clamp"]) <= 1e-3
    assert maxdiff(np.r_[tracker.pos, tracker.size], np.r_[ref["out_target_pos"], ref["out_target_sz"]]) <= 1e-3
    assert maxdiff(step.mask, ref["mask"]) <= 1e-4
    assert maxdiff(np.r_[step.sub_box, step.back_box], np.r_[ref["sub_box"], ref["back_box"]]) <= 1e-3
    assert maxdiff(step.mask_in_img, ref["mask_in_img"]) <= 1e-4
    assert int((step.target_mask != ref["target_mask"]).sum()) <= FLIP_BOUND
    assert step.contour_area == pytest.approx(ref["max_contour_area"], abs=50)
    assert maxdiff(step.polygon, ref["rbox_in_img"]) <= 1.0


def _corner_distance(rotated, polygon) -> float:
    corners = rotated_box_corners(rotated)
    return max(np.linalg.norm(corners - p, axis=1).min() for p in polygon)


def test_track_from_the_box_follows_the_official_trajectory(checkpoint, frames):
    ref = tracker_reference()
    tracker = make(checkpoint, tracking_threshold=0.5)
    tracker.initialize(frames[0], INIT_BOX)
    for t in range(9):
        result = tracker.track(frames[t + 1])
        assert result.state is TrackState.TRACKING
        assert result.score == pytest.approx(float(ref["state_score"][t]), abs=1e-5)
        assert int((result.mask != ref["target_mask"][t].astype(bool)).sum()) <= FLIP_BOUND
        assert result.box == mask_to_box(result.mask)
        # The official polygon in pixel-centre coordinates, shifted to the project's pixel-edge ones.
        assert _corner_distance(result.rotated_box, ref["rbox_in_img"][t] + 0.5) <= 0.01
        assert -math.pi / 4 <= result.rotated_box.angle < math.pi / 4
        assert set(result.timings) == {"crop", "network", "decode", "refine", "mask", "total"}
    assert maxdiff(np.r_[tracker.pos, tracker.size], np.r_[ref["out_target_pos"][8], ref["out_target_sz"][8]]) <= 1e-2


def test_mask_and_rotated_box_targets_start_from_their_enclosing_box(checkpoint, frames, load_davis_frames):
    ref = tracker_reference()
    first_mask = load_davis_frames("car-shadow", 1)[1][0]
    tracker = make(checkpoint)
    tracker.initialize(frames[0], MaskTarget(first_mask))
    assert np.array_equal(tracker.pos, ref["init_target_pos"]) and np.array_equal(tracker.size, ref["init_target_sz"])
    tracker.initialize(frames[0], RotatedBox(484.0, 185.0, 194.0, 342.0, math.pi / 2))
    assert maxdiff(tracker.pos, ref["init_target_pos"]) < 1e-9 and maxdiff(tracker.size, ref["init_target_sz"]) < 1e-9


def test_states_follow_the_score_thresholds(checkpoint, frames):
    score = float(tracker_reference()["state_score"][0])  # 0.77
    uncertain = make(checkpoint, tracking_threshold=0.9)
    uncertain.initialize(frames[0], INIT_BOX)
    result = uncertain.track(frames[1])
    assert result.state is TrackState.UNCERTAIN and result.mask.any() and result.rotated_box is not None
    lost = make(checkpoint, lost_threshold=0.9, tracking_threshold=0.95)
    lost.initialize(frames[0], INIT_BOX)
    result = lost.track(frames[1])
    assert result.state is TrackState.LOST and result.score == pytest.approx(score, abs=1e-5)
    assert not result.mask.any() and result.box is None and result.rotated_box is None
    # Reporting only: the official step still moved the target.
    assert maxdiff(lost.pos, tracker_reference()["out_target_pos"][0]) <= 1e-3


def test_small_mask_falls_back_to_the_state_box_and_an_empty_one_is_lost(checkpoint, frames):
    # Frame 1's back-projected mask peaks at 0.582: above 0.56 lie ~10 pixels, too few for the rectangle.
    res_x, res_y, res_w, res_h = tracker_reference()["res_xywh_before_clamp"][0]
    tiny = make(checkpoint, seg_thr=0.56, tracking_threshold=0.5)
    tiny.initialize(frames[0], INIT_BOX)
    result = tiny.track(frames[1])
    assert result.state is TrackState.UNCERTAIN and 0 < result.mask.sum() < 50
    expected = clip_box(Box(res_x - res_w / 2, res_y - res_h / 2, res_w, res_h), frames[1].shape[:2])
    assert result.rotated_box.angle == 0.0
    assert _corner_distance(result.rotated_box, box_corners(expected)) <= 1e-3
    empty = make(checkpoint, seg_thr=0.9)
    empty.initialize(frames[0], INIT_BOX)
    result = empty.track(frames[1])
    assert result.state is TrackState.LOST and not result.mask.any() and result.box is None


def test_refuses_to_start_without_weights():
    with pytest.raises(MissingWeightsError, match=r"SiamMask_DAVIS\.pth.*SiamMask_VOT\.pth.*--weights"):
        create_tracker("siammask", {"runtime": {"device": "cpu"}})


def test_half_precision_needs_cuda(checkpoint):
    with pytest.raises(ConfigError, match="half precision needs a CUDA device"):
        make(checkpoint, runtime={"device": "cpu", "half": True})


@pytest.mark.parametrize("bad", [{"lost_threshold": 0.9, "tracking_threshold": 0.5}, {"seg_thr": 1.0},
                                 {"window_influence": 1.5}, {"penalty_k": -1.0}])
def test_bad_hyper_parameters_are_config_errors(bad):
    with pytest.raises(ConfigError):
        create_tracker("siammask", {"weights": "unused.pth", **bad})
