"""segtrack_ros.conversions: each ROS <-> core mapping and its inverse give back what went in."""

from __future__ import annotations

import numpy as np
import pytest

from prerequisites import needs_ros
from segtrack_core.types import Box, MaskTarget, PointsTarget, RotatedBox, TrackResult, TrackState

pytestmark = needs_ros("the ROS <-> core conversions")


@pytest.fixture(scope="module")
def conv():
    from segtrack_ros import conversions

    return conversions


def test_stamps_and_states_round_trip(conv):
    from segtrack.msg import TrackedTarget

    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_722_000_123_456_789_012):
        stamp = conv.ns_to_stamp(ns)
        assert 0 <= stamp.nanosec < 1_000_000_000 and conv.stamp_to_ns(stamp) == ns
    assert conv.state_code(TrackState.LOST) == TrackedTarget.STATE_LOST
    assert [conv.state_from_code(conv.state_code(s)) for s in TrackState] == list(TrackState)


def test_boxes_round_trip_through_bounding_box_2d(conv):
    msg = conv.box_to_msg(Box(np.float16(10), 20, 30, 40))
    assert (msg.center.position.x, msg.center.position.y, msg.size_x, msg.size_y, msg.center.theta) == \
        (25.0, 40.0, 30.0, 40.0, 0.0)
    assert conv.box_from_msg(msg) == Box(10.0, 20.0, 30.0, 40.0)
    rbox = RotatedBox(50.5, 60.25, 30.0, 10.0, -0.7)
    assert conv.rotated_box_from_msg(conv.rotated_box_to_msg(rbox)) == rbox


def test_masks_and_images_round_trip(conv):
    from std_msgs.msg import Header

    mask = np.zeros((7, 9), bool)
    mask[2:5, 3:8] = True
    msg = conv.mask_to_image(mask)
    assert (msg.encoding, msg.step, bytes(msg.data).count(255)) == ("mono8", 9, 15)
    assert np.array_equal(conv.mask_from_image(msg), mask)
    writer = conv.MaskImageWriter()  # reuses its buffer per frame: the message reflects the newest mask
    assert np.array_equal(conv.mask_from_image(writer.message(Header(), mask)), mask)
    assert np.array_equal(conv.mask_from_image(writer.message(Header(), ~mask)), ~mask)
    image = np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3)
    msg = conv.image_from_array(image, Header(frame_id="camera"))
    assert (msg.encoding, msg.step, msg.header.frame_id) == ("bgr8", 27, "camera")
    assert bytes(msg.data) == image.tobytes()


def test_set_target_requests_round_trip(conv):
    mask = np.zeros((60, 80), bool)
    mask[10:20, 30:50] = True
    for target in (Box(5.0, 6.0, 20.0, 10.0), RotatedBox(40.0, 30.0, 20.0, 10.0, 0.4),
                   PointsTarget(((1.0, 2.0),), ((3.5, 4.0), (5.0, 6.0)))):
        assert conv.target_from_request(conv.target_request(target)) == target
    back = conv.target_from_request(conv.target_request(MaskTarget(mask)))
    assert isinstance(back, MaskTarget) and np.array_equal(back.mask, mask)
    request = conv.target_request(Box(1, 2, 3, 4), stamp_ns=5_000_000_007)
    assert request.use_stamp and conv.stamp_to_ns(request.stamp) == 5_000_000_007
    assert not conv.target_request(Box(1, 2, 3, 4)).use_stamp
    unknown = conv.target_request(Box(1, 2, 3, 4))
    unknown.type = 99
    from segtrack_core.errors import InvalidTargetError
    with pytest.raises(InvalidTargetError, match="unknown target type 99"):
        conv.target_from_request(unknown)


def test_results_round_trip_through_the_outputs(conv):
    from std_msgs.msg import Header

    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:25] = True
    box = Box(5.0, 10.0, 20.0, 10.0)
    result = TrackResult(mask, 0.75, box, RotatedBox(15.0, 15.0, 20.0, 10.0, 0.0), TrackState.UNCERTAIN)
    header = Header(frame_id="camera", stamp=conv.ns_to_stamp(42))
    target = conv.tracked_target(header, 3, result, 12.5)
    assert (target.target_id, target.tracker_ms, target.has_box) == (3, 12.5, True)
    back = conv.result_from_messages(target, conv.mask_to_image(mask, header))
    assert (back.score, back.box, back.state) == (0.75, box, TrackState.UNCERTAIN)
    assert back.rotated_box == RotatedBox(15.0, 15.0, 20.0, 10.0, 0.0) and np.array_equal(back.mask, mask)
    (detection,) = conv.detections(target).detections
    assert detection.id == "3" and conv.rotated_box_from_msg(detection.bbox) == back.rotated_box
    lost = TrackResult(np.zeros_like(mask), 0.1, None, None, TrackState.LOST)
    assert not conv.tracked_target(header, 3, lost, 1.0).has_box
    assert conv.detections(conv.tracked_target(header, 3, lost, 1.0)).detections == []
    assert conv.result_from_messages(conv.tracked_target(header, 3, lost, 1.0),
                                     conv.mask_to_image(lost.mask)).state is TrackState.LOST
