"""Node options over ROS: lifecycle without autostart, namespace + remapped topic, compressed input,
reliable image QoS."""

from __future__ import annotations

import os
import time

import cv2
import yaml

from prerequisites import needs_ros

pytestmark = needs_ros("the node's lifecycle, namespace and compressed input")

DOMAIN_ID = 1 + (os.getpid() + 57) % 100


def test_lifecycle_namespace_and_compressed_images(load_davis_frames, tmp_path):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from segtrack.msg import TrackedTarget
    from segtrack_core.geometry import mask_to_box
    from ros_harness.client import DEFAULT_PARAMS_FILE, NodeProcess, TrackerClient, configure_this_process
    from segtrack_ros.conversions import mask_from_image

    frames, masks = load_davis_frames("car-shadow", 4)
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
    box = mask_to_box(masks[0])
    configure_this_process(DOMAIN_ID)
    # The settings come from a copy of the shipped params file, so the node in /cam must pick up its keys.
    config = yaml.safe_load(DEFAULT_PARAMS_FILE.read_text())
    settings = next(iter(config.values()))["ros__parameters"]
    settings.update(backend="csrt", use_compressed=True, autostart=False)
    settings["qos"] = {"reliability": "reliable"}
    params_file = tmp_path / "tracker.yaml"
    params_file.write_text(yaml.safe_dump(config))
    reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
    with NodeProcess(DOMAIN_ID, params_file=params_file, namespace="/cam",
                     remappings={"image": "/cam/image_raw"}) as node, \
            TrackerClient(DOMAIN_ID, namespace="/cam", image_topic="/cam/image_raw", image_qos=reliable) as client:
        change = client.node.create_client(ChangeState, "/cam/segtrack/change_state")
        get_state = client.node.create_client(GetState, "/cam/segtrack/get_state")
        assert change.wait_for_service(timeout_sec=30), node.log()
        assert get_state.wait_for_service(timeout_sec=5)
        # Without autostart the node waits, unconfigured, with no tracker services.
        assert client.call(get_state, GetState.Request()).current_state.label == "unconfigured"
        # A transition the state has not got is refused (and, being harmless, is the client's first call).
        activate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
        assert not client.call(change, activate).success
        assert not client.set_target_client.wait_for_service(timeout_sec=0.5)
        # Unconfigured: a configure-time parameter is accepted (validated) and used by configure.
        assert client.set_parameters(frame_buffer_size=4)[0].successful
        assert not client.set_parameters(frame_buffer_size=0)[0].successful
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert client.call(change, ChangeState.Request(transition=Transition(id=transition))).success
        assert client.call(get_state, GetState.Request()).current_state.label == "active"
        assert client.wait_for_services(10)
        (refused,) = client.set_parameters(frame_buffer_size=8)
        assert not refused.successful and "needs reconfigure" in refused.reason
        assert client.get_parameters("frame_buffer_size") == {"frame_buffer_size": 4}

        # Before any image: a clear refusal naming the (remapped) topic.
        response = client.set_target(box)
        assert not response.success and "no image received yet on /cam/image_raw/compressed" in response.message

        assert client.wait_for_subscriber(10, compressed=True), node.log()
        (subscription,) = client.node.get_subscriptions_info_by_topic("/cam/image_raw/compressed")
        assert subscription.node_name == "segtrack" and subscription.node_namespace == "/cam"
        assert subscription.qos_profile.reliability == ReliabilityPolicy.RELIABLE  # qos.reliability override
        for _ in range(20):
            stamp = client.publish_compressed(jpegs[0])
            time.sleep(0.2)
            response = client.set_target(box, stamp=stamp)
            if response.success:
                break
        assert response.success, response.message
        for jpeg in jpegs[1:]:
            stamp = client.publish_compressed(jpeg)
            assert client.wait_for(lambda r: client.outputs_for(stamp) is not None, 10), node.log()
            target, mask_msg, _ = client.outputs_for(stamp)
            assert target.state == TrackedTarget.STATE_TRACKING
            assert mask_from_image(mask_msg).shape == frames[0].shape[:2]

        # Deactivated: services answer that the node is inactive, images are ignored.
        assert client.call(change, ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE))).success
        response = client.set_target(box)
        assert not response.success and "not active" in response.message
        client.clear()
        client.publish_compressed(jpegs[1])
        assert not client.wait_for(lambda r: r.targets, 1.0)
        assert node.alive()


def test_bad_start_values_fail_configure_with_the_reason():
    from ros_harness.client import NodeProcess

    with NodeProcess(DOMAIN_ID, {"backend": "csrt", "qos.depth": 0, "service_queue_depth": 0}) as node:
        deadline = time.monotonic() + 30
        while "configure failed" not in node.log() and time.monotonic() < deadline and node.alive():
            time.sleep(0.1)
        assert "configure failed: qos.depth must be at least 1" in node.log(), node.log()
        assert node.alive()  # it waits, unconfigured, for fixed parameters
