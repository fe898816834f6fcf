"""The debug overlay draws the result and leaves the input frame alone."""

import numpy as np

from segtrack_core.types import Box, RotatedBox, TrackResult, TrackState
from segtrack_core.visualize import BOX_COLOR, draw_overlay


def test_overlay_tints_the_mask_draws_the_boxes_and_copies_the_frame():
    frame = np.full((120, 160, 3), 100, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[50:90, 60:120] = True
    result = TrackResult(mask, 0.8, Box(60, 50, 60, 40), RotatedBox(90, 70, 60, 40, 0.3), TrackState.TRACKING)
    out = draw_overlay(frame, result, label="test")
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (frame == 100).all()  # input untouched
    assert not np.array_equal(out[70, 90], frame[70, 90])  # inside the mask: tinted
    assert np.array_equal(out[110, 10], frame[110, 10])  # far from everything: unchanged
    assert np.abs(out[50, 75].astype(int) - BOX_COLOR).sum() < 120  # top edge of the box
    assert not np.array_equal(out[15, 20], frame[15, 20])  # text band


def test_overlay_of_a_lost_target_draws_no_box():
    frame = np.zeros((60, 80, 3), np.uint8)
    result = TrackResult(np.zeros((60, 80), bool), 0.0, None, None, TrackState.LOST)
    out = draw_overlay(frame, result)
    assert not out[40:, :].any()  # only the text band at the top is drawn
