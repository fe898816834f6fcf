"""Median flow: the target's displacement between two frames from the optical flow of its pixels; motion
evidence: pixels that moved with the target's surroundings rather than with the target."""

from __future__ import annotations

import cv2
import numpy as np

from segtrack_core.models.motion import grid_points, median_flow, motion_evidence


def _textured(shape=(200, 240), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, shape).astype(np.uint8), (0, 0), 2)


def test_grid_points_cover_the_mask_and_only_the_mask():
    mask = np.zeros((100, 120), bool)
    mask[20:60, 30:50] = True
    mask[40:60, 30:40] = False  # an L shape: the grid must skip its hole
    points = grid_points(mask, 100)[:, 0]
    assert 50 <= len(points) <= 100
    assert mask[points[:, 1].astype(int), points[:, 0].astype(int)].all()
    assert points[:, 0].min() < 33 and points[:, 0].max() > 46 and points[:, 1].max() > 56
    assert grid_points(np.zeros((10, 10), bool), 100).shape == (0, 1, 2)


def test_median_flow_follows_the_target_not_its_surroundings():
    previous = _textured()
    current = _textured(seed=1)  # a new background: only the target's pixels move along
    mask = np.zeros(previous.shape, bool)
    mask[60:120, 80:140] = True
    current[67:127, 68:128] = previous[60:120, 80:140]  # the target moved by (-12, +7)
    dx, dy = median_flow(previous, current, grid_points(mask, 100), 21, 1.0, 5)
    assert abs(dx + 12) < 0.3 and abs(dy - 7) < 0.3


def test_median_flow_gives_up_without_texture_or_points():
    flat = np.full((120, 120), 128, np.uint8)
    mask = np.zeros(flat.shape, bool)
    mask[40:80, 40:80] = True
    assert median_flow(flat, flat.copy(), grid_points(mask, 100), 21, 1.0, 5) is None
    textured = _textured((120, 120))
    assert median_flow(textured, textured, grid_points(mask, 3), 21, 1.0, 5) is None  # fewer than 5 points


def _scene_flow(target_motion=(4.0, 0.0)):
    """A 60x80 flow field: a static scene, the target (rows 20-40, columns 10-30) moving by ``target_motion``
    and a static look-alike beside it (columns 40-60); the target's last mask and the pixels outside its box."""
    flow = np.zeros((60, 80, 2), np.float32)
    flow[20:40, 10:30] = target_motion
    target = np.zeros((60, 80), bool)
    target[20:40, 10:30] = True
    background = np.ones((60, 80), bool)
    background[15:45, 5:35] = False
    return flow, target, background


def test_motion_evidence_holds_back_what_stays_with_the_surroundings():
    flow, target, background = _scene_flow()
    evidence = motion_evidence(flow, (4.0, 0.0), target, background, 1.0, 0.7)
    assert evidence.shape == (60, 80) and evidence.max() <= 0.0
    assert (evidence[20:40, 40:60] == -1.0).all()  # the static look-alike
    assert (evidence[target] == 0.0).all()  # the target's own pixels are never held back
    flow[20:40, 40:60] = (4.0, 0.0)  # a second object moving with the target is not held back
    assert (motion_evidence(flow, (4.0, 0.0), target, background, 1.0, 0.7)[20:40, 40:60] == 0.0).all()


def test_motion_evidence_is_silent_when_motion_tells_nothing():
    flow, target, background = _scene_flow(target_motion=(0.5, 0.0))
    assert motion_evidence(flow, (0.5, 0.0), target, background, 1.0, 0.7) is None  # moved with its surroundings
    flow, target, background = _scene_flow()
    flow[20:40, 10:22] = 0.0  # most of the target stood still: its median motion does not describe it
    assert motion_evidence(flow, (4.0, 0.0), target, background, 1.0, 0.7) is None
    assert motion_evidence(flow, (4.0, 0.0), np.zeros_like(target), background, 1.0, 0.7) is None
