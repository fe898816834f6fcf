"""The segtrack node in its own process, driven over ROS: outputs, services, bad input (backend csrt).

The node runs in a child process with a private domain id on localhost; this process talks to it through
ros_harness.client (its own rclpy context). Frames are real DAVIS frames at half size to keep CSRT fast.
"""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

from prerequisites import needs_ros
from segtrack_core.geometry import mask_to_box
from segtrack_core.metrics import region_similarity
from segtrack_core.types import Box, MaskTarget, PointsTarget, RotatedBox


pytestmark = needs_ros("the node (services, topics, stamps, bad input)")

SIZE = (427, 240)  # half of DAVIS's 854x480
DOMAIN_ID = 1 + (os.getpid() + 17) % 100


@pytest.fixture(scope="module")
def sequence(load_resized_frames):
    return load_resized_frames("car-shadow", 12, SIZE)


@pytest.fixture(scope="module")
def node_and_client():
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process

    configure_this_process(DOMAIN_ID)
    node = NodeProcess(DOMAIN_ID, {"backend": "csrt", "frame_buffer_size": 8, "frame_buffer_max_mb": 2})
    client = None
    try:
        client = TrackerClient(DOMAIN_ID, debug_image=True)
        assert client.wait_for_services(30), f"node services never appeared; node log:\n{node.log()}"
        assert client.wait_for_subscriber(10), f"node never subscribed; node log:\n{node.log()}"
        yield node, client
    finally:
        if client is not None:
            client.close()
        node.stop()


@pytest.fixture
def client(node_and_client):
    node, client = node_and_client
    assert node.alive(), f"node died; log:\n{node.log()}"
    client.enable(True)
    client.clear()
    yield client
    assert node.alive(), f"node died; log:\n{node.log()}"


def box_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    return mask_to_box(mask).as_tuple()


def truth_box_mask(truth: np.ndarray) -> np.ndarray:
    from segtrack_core.geometry import target_to_mask

    return target_to_mask(mask_to_box(truth), truth.shape)


def test_frames_in_give_mask_target_and_detections_with_the_image_stamp(client, sequence):
    from segtrack.msg import TrackedTarget
    from segtrack_ros.conversions import mask_from_image, stamp_to_ns

    frames, masks = sequence
    response = client.start_tracking(frames[0], box_of(masks[0]))
    assert response.success, response.message
    target_id = response.target_id
    assert target_id >= 1
    for frame, truth in zip(frames[1:6], masks[1:6]):
        outputs = client.track_frame(frame)
        assert outputs is not None, "no outputs for a published frame"
        target, mask_msg, detections = outputs
        stamp = stamp_to_ns(target.header.stamp)
        assert stamp_to_ns(mask_msg.header.stamp) == stamp == stamp_to_ns(detections.header.stamp)
        assert target.header.frame_id == mask_msg.header.frame_id == "camera"
        assert target.target_id == target_id
        assert target.state == TrackedTarget.STATE_TRACKING and target.has_box
        assert 0.0 <= target.score <= 1.0
        assert target.tracker_ms > 0 and target.latency_ms >= target.tracker_ms
        assert (mask_msg.encoding, mask_msg.width, mask_msg.height) == ("mono8", *SIZE)
        mask = mask_from_image(mask_msg)
        # CSRT's mask is its box: it must sit on the car's box and cover most of the car.
        assert region_similarity(mask, truth_box_mask(truth)) > 0.5
        assert (mask & truth).sum() > 0.6 * truth.sum()
        (detection,) = detections.detections
        assert detection.id == str(target_id)
        assert detection.results[0].hypothesis.class_id == "target"
        assert detection.results[0].hypothesis.score == pytest.approx(target.score)
        assert detection.bbox.center.position.x == pytest.approx(target.rotated_box.center.position.x)
        assert detection.bbox.center.theta == pytest.approx(target.rotated_box.center.theta)


def test_rotated_box_covers_the_mask(client, sequence):
    from segtrack_core.geometry import fill_polygon, rotated_box_corners
    from segtrack_ros.conversions import mask_from_image

    frames, masks = sequence
    # A rotated box target: the reported rotated box must still enclose the reported mask.
    x, y, w, h = box_of(masks[0])
    assert client.start_tracking(frames[0], (x, y, w, h)).success  # the node now holds a frame
    response = client.set_target(RotatedBox(x + w / 2, y + h / 2, w * 0.9, h * 0.8, 0.2))
    assert response.success, response.message
    for frame in frames[1:4]:
        target, mask_msg, _ = client.track_frame(frame)
        mask = mask_from_image(mask_msg)
        rb = target.rotated_box
        rbox = RotatedBox(rb.center.position.x, rb.center.position.y, rb.size_x, rb.size_y, rb.center.theta)
        polygon = fill_polygon(rotated_box_corners(rbox), mask.shape)
        assert mask.sum() > 100
        assert (mask & polygon).sum() >= 0.97 * mask.sum()
        assert region_similarity(mask, polygon) > 0.5  # and it is tight around it
        box = target.box
        assert box.center.theta == 0.0
        ys, xs = np.nonzero(mask)
        assert box.center.position.x - box.size_x / 2 <= xs.min() + 1
        assert box.center.position.x + box.size_x / 2 >= xs.max()


def test_every_target_kind_initialises_and_target_id_counts_up(client, sequence):
    frames, masks = sequence
    first = client.start_tracking(frames[0], box_of(masks[0]))
    assert first.success, first.message
    x, y, w, h = box_of(masks[0])
    foreground = np.argwhere(cv2.erode(masks[0].astype(np.uint8), np.ones((9, 9), np.uint8)))[::400][:3]
    responses = [
        client.set_target(RotatedBox(x + w / 2, y + h / 2, w, h, -0.3)),
        client.set_target(MaskTarget(masks[0])),
        client.set_target(PointsTarget(tuple((float(c), float(r)) for r, c in foreground))),
    ]
    for response in responses:
        assert response.success, response.message
    assert [r.target_id for r in responses] == [first.target_id + 1, first.target_id + 2, first.target_id + 3]
    target, _, _ = client.track_frame(frames[1])
    assert target.target_id == first.target_id + 3 and target.has_box


def test_set_target_on_a_buffered_stamp(client, sequence):
    from segtrack_ros.conversions import stamp_to_ns

    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    stamps = []
    for frame in frames[1:4]:
        target, _, _ = client.track_frame(frame)
        stamps.append(stamp_to_ns(target.header.stamp))
    # The operator clicked on an older frame: initialise on exactly that one.
    response = client.set_target(mask_to_box(masks[1]), stamp=stamps[0])
    assert response.success, response.message
    unknown = client.set_target(mask_to_box(masks[1]), stamp=stamps[0] - 1)
    assert not unknown.success and "no buffered frame has stamp" in unknown.message
    outputs = client.track_frame(frames[4])
    assert outputs is not None and outputs[0].target_id == response.target_id


def _assert_only_outputs_for(client, outputs):
    """Outputs resumed, and nothing for the suppressed frames arrived late (so the wait above was not
    merely too short for a slow node)."""
    from segtrack_ros.conversions import stamp_to_ns

    assert outputs is not None
    resumed = stamp_to_ns(outputs[0].header.stamp)
    assert [stamp_to_ns(m.header.stamp) for _, m in client.received.targets] == [resumed]


def test_reset_stops_outputs_until_a_new_target(client, sequence):
    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    assert client.track_frame(frames[1]) is not None
    response = client.reset()
    assert response.success, response.message
    client.clear()
    client.publish_frame(frames[2])
    assert not client.wait_for(lambda r: r.targets or r.masks, 1.5), "outputs after reset"
    assert client.set_target(mask_to_box(masks[2])).success
    _assert_only_outputs_for(client, client.track_frame(frames[3]))


def test_disabled_node_publishes_nothing_then_resumes(client, sequence):
    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    response = client.enable(False)
    assert response.success and "disabled" in response.message
    client.clear()
    for frame in frames[1:4]:
        client.publish_frame(frame)
        time.sleep(0.1)
    assert not client.wait_for(lambda r: r.targets or r.masks or r.detections, 1.5), "outputs while disabled"
    assert client.enable(True).success
    _assert_only_outputs_for(client, client.track_frame(frames[4]))


def test_debug_image_is_an_overlay_of_the_frame(client, sequence):
    from segtrack_ros.conversions import stamp_to_ns

    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    target, _, _ = client.track_frame(frames[1])
    stamp = stamp_to_ns(target.header.stamp)
    assert client.wait_for(lambda r: any(stamp_to_ns(m.header.stamp) == stamp for _, m in r.debug_images), 5)
    debug = next(m for _, m in client.received.debug_images if stamp_to_ns(m.header.stamp) == stamp)
    assert (debug.encoding, debug.width, debug.height) == ("bgr8", *SIZE)
    image = np.frombuffer(debug.data, np.uint8).reshape(SIZE[1], SIZE[0], 3)
    changed = np.any(image != frames[1], axis=2)
    assert 0.05 < changed.mean() < 0.9  # tinted target and drawn boxes, the rest untouched


def test_bad_images_are_dropped_and_tracking_goes_on(client, sequence):
    from segtrack.msg import TrackedTarget
    from ros_harness.client import diagnostic_value

    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    bad = []
    msg = client.image_message(frames[1])
    msg.encoding = "bayer_grbg8"
    bad.append(msg)
    msg = client.image_message(frames[1])
    msg.data = msg.data[:-7]  # data length != step * height
    bad.append(msg)
    msg = client.image_message(frames[1])
    msg.height, msg.width, msg.step = 0, 0, 0
    msg.data = msg.data[:0]
    bad.append(msg)
    msg = client.image_message(frames[1])
    msg.step = 10  # smaller than width * 3
    msg.data = msg.data[:10 * msg.height]
    bad.append(msg)
    stamps = [client.publish(m) for m in bad]
    time.sleep(0.5)
    assert client.outputs_for(stamps[0]) is None and client.outputs_for(stamps[-1]) is None
    # A different resolution mid-track: reported lost (no box, no detection), the node keeps running.
    outputs = client.track_frame(cv2.resize(frames[2], (320, 180)))
    assert outputs is not None
    target, mask_msg, detections = outputs
    assert target.state == TrackedTarget.STATE_LOST and not target.has_box
    assert detections.detections == [] and (mask_msg.width, mask_msg.height) == (320, 180)
    # Back at the original size the same target is tracked again.
    target, _, detections = client.track_frame(frames[3])
    assert target.state == TrackedTarget.STATE_TRACKING and len(detections.detections) == 1
    # The dropped images show up in the diagnostics.
    assert client.wait_for(lambda r: any(diagnostic_value(m, "bad_frames") not in (None, "0") for _, m in r.diagnostics), 3)


def test_bad_set_target_requests_fail_clearly(client, sequence):
    from segtrack.srv import SetTarget

    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    cases = [
        (client.set_target(Box(1000, 1000, 50, 50)), "outside"),
        (client.set_target(Box(10, 10, 0, 20)), "positive size"),
        (client.set_target(RotatedBox(-500, 50, 40, 40, 0.5)), "outside"),
        (client.set_target(MaskTarget(np.zeros(masks[0].shape, bool))), "empty"),
        (client.set_target(MaskTarget(np.ones((10, 10), bool))), "mask is 10x10"),
        (client.set_target(PointsTarget(())), "at least one foreground point"),
        (client.set_target(PointsTarget(((5000.0, 5.0),))), "outside"),
        (client.call(client.set_target_client, SetTarget.Request(type=9)), "unknown target type"),
    ]
    for response, expected in cases:
        assert not response.success and expected in response.message, response.message
        assert response.target_id == 0
    # The previous target is still being tracked.
    outputs = client.track_frame(frames[1])
    assert outputs is not None and outputs[0].has_box


def test_set_target_without_stamp_skips_an_undecodable_newest_frame(client, sequence):
    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    broken = client.image_message(frames[1])
    broken.encoding = "bayer_grbg8"
    client.publish_frame(frames[1])
    time.sleep(0.3)
    client.publish(broken)
    time.sleep(0.3)
    # The newest frame cannot be converted: the target goes on the newest one that can.
    response = client.set_target(mask_to_box(masks[1]))
    assert response.success, response.message
    outputs = client.track_frame(frames[2])
    assert outputs is not None and outputs[0].target_id == response.target_id and outputs[0].has_box


def test_a_target_set_on_a_future_stamped_frame_does_not_stop_tracking(node_and_client, client, sequence):
    from ros_harness.client import diagnostic_value

    node, _ = node_and_client
    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    future = time.time_ns() + 3600 * 10**9  # a camera clock an hour ahead, for one frame
    client.publish_frame(frames[1], stamp=future)
    time.sleep(0.3)
    response = client.set_target(mask_to_box(masks[1]), stamp=future)
    assert response.success, response.message
    # Frames stamped now are an hour older than the target's frame: a clock jump, tracked and reported.
    for frame in frames[2:4]:
        outputs = client.track_frame(frame)
        assert outputs is not None and outputs[0].target_id == response.target_id, node.log()

    def reported(r):
        return any(diagnostic_value(m, "future_stamped_frames") not in (None, "0")
                   and diagnostic_value(m, "stamp_jumps") not in (None, "0") for _, m in r.diagnostics)

    assert client.wait_for(reported, 3)
    assert "ahead of this node's clock" in node.log() and "jumped back" in node.log()


def test_fifty_concurrent_service_calls_are_all_answered(client, sequence):
    import threading

    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from segtrack.srv import SetTarget
    from std_srvs.srv import SetBool

    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    # The caller's own response queue must hold 50 answers too; the node's request queue is under test.
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    set_target = client.node.create_client(SetTarget, f"{client.prefix}/set_target", qos_profile=qos)
    enable = client.node.create_client(SetBool, f"{client.prefix}/enable", qos_profile=qos)
    assert set_target.wait_for_service(timeout_sec=10) and enable.wait_for_service(timeout_sec=10)
    x, y, w, h = box_of(masks[0])
    request = SetTarget.Request(type=SetTarget.Request.TYPE_BOX)
    request.box.center.position.x, request.box.center.position.y = x + w / 2, y + h / 2
    request.box.size_x, request.box.size_y = w, h
    # One answered call each first, through the harness: it resends a new client's request whose answer
    # discovery lost; the burst below tests the node's queue, not discovery.
    assert client.call(set_target, request).success and client.call(enable, SetBool.Request(data=True)).success
    answered = threading.Semaphore(0)
    futures = [set_target.call_async(request) if i % 2 else enable.call_async(SetBool.Request(data=True))
               for i in range(50)]
    for future in futures:
        future.add_done_callback(lambda _: answered.release())
    deadline = time.monotonic() + 30
    got = sum(answered.acquire(timeout=max(deadline - time.monotonic(), 0)) for _ in futures)
    assert got == 50, f"{50 - got} of 50 concurrent calls were never answered"
    assert all(f.result().success for f in futures)
    assert len({f.result().target_id for f in futures[1::2]}) == 25  # each set_target was served


def test_frame_buffer_is_bounded_by_bytes_and_memory_is_reported(node_and_client, client, sequence):
    from ros_harness.client import diagnostic_value

    node, _ = node_and_client
    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    stamps = [stamp_of(client.track_frame(frame)) for frame in frames[1:9]]
    # 2 MiB hold 6 of these 307 kB frames (fewer than frame_buffer_size 8): the oldest two are gone.
    assert not client.set_target(mask_to_box(masks[1]), stamp=stamps[1]).success
    assert client.set_target(mask_to_box(masks[2]), stamp=stamps[2]).success

    def reported(r):
        return any(diagnostic_value(m, "frame_buffer_frames") == "6" for _, m in r.diagnostics)

    client.clear()
    assert client.wait_for(reported, 3)
    latest = client.received.diagnostics[-1][1]
    assert float(diagnostic_value(latest, "frame_buffer_mb")) <= 2.0
    assert float(diagnostic_value(latest, "memory_rss_mb")) > 50  # python + rclpy + OpenCV
    # One frame larger than the whole bound: kept alone, and logged.
    client.publish_frame(cv2.resize(frames[0], (1280, 720)))
    assert client.wait_for(lambda r: any(diagnostic_value(m, "frame_buffer_frames") == "1"
                                         for _, m in r.diagnostics), 5)
    assert "exceeds frame_buffer_max_mb" in node.log()


def stamp_of(outputs) -> int:
    from segtrack_ros.conversions import stamp_to_ns

    assert outputs is not None
    return stamp_to_ns(outputs[0].header.stamp)


def test_boxes_far_larger_than_the_image_are_clipped_and_tracked(client, sequence):
    frames, masks = sequence
    assert client.start_tracking(frames[0], box_of(masks[0])).success
    for request in (lambda: client.set_target(Box(213 - 5e11, 120 - 5e11, 1e12, 1e12)),
                    lambda: client.set_target(RotatedBox(213, 120, 1e300, 1e300, 0.3))):
        response = request()
        assert response.success, response.message
        outputs = client.track_frame(frames[1])
        assert outputs is not None and outputs[0].target_id == response.target_id


def test_image_subscription_uses_sensor_data_qos(client):
    from rclpy.qos import ReliabilityPolicy

    (subscription,) = client.node.get_subscriptions_info_by_topic("/image")
    assert subscription.node_name == "segtrack"
    assert subscription.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # REP-2003
