"""ros2 param set on a running node (d3s2 on CPU): live parameters apply at once, the rest are refused
with the reason; nothing is accepted silently."""

from __future__ import annotations

import os

from prerequisites import needs_ros


pytestmark = needs_ros("`ros2 param set` handling")

DOMAIN_ID = 1 + (os.getpid() + 43) % 100  # an offset no other test module uses


def test_param_set_applies_live_or_refuses_with_a_reason(small_clip):
    from segtrack.msg import TrackedTarget
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process

    frames, box = small_clip
    configure_this_process(DOMAIN_ID)
    with NodeProcess(DOMAIN_ID, {"backend": "d3s2", "tracker.runtime.device": "cpu"}) as node, \
            TrackerClient(DOMAIN_ID, debug_image=True) as client:
        assert client.wait_for_services(60) and client.wait_for_subscriber(10), node.log()
        assert client.start_tracking(frames[0], box).success
        target, _, _ = client.track_frame(frames[1], timeout=30)
        assert target.state == TrackedTarget.STATE_TRACKING

        # Thresholds apply to the running tracker: with these no score is good enough.
        results = client.set_parameters(tracker__tracking_threshold=1.0, tracker__lost_threshold=0.999)
        assert all(r.successful for r in results), [r.reason for r in results]
        # d3s2 declares a loss after lost_patience (3) weak frames in a row; the frame repeats so the
        # later steps keep their frames.
        states = [client.track_frame(frames[2], timeout=30)[0] for _ in range(3)]
        assert [t.state for t in states] == [TrackedTarget.STATE_UNCERTAIN] * 2 + [TrackedTarget.STATE_LOST]
        assert not states[-1].has_box
        assert all(r.successful for r in client.set_parameters(tracker__lost_threshold=0.3,
                                                               tracker__tracking_threshold=0.5))

        refused = {
            "qos__depth": (0, "at least 1"),
            "tracker__runtime__device": ("cpu", "needs reconfigure"),
            "tracker__gem__memory": (20, "needs reconfigure"),
            "backend": ("csrt", "read-only"),
            "frame_buffer_size": (10, "needs reconfigure"),
            "tracker__lost_threshold": (0.9, "lost_threshold <= tracking_threshold"),  # tracking is 0.5
            "tracker__tracking_threshold": (2.0, "tracking_threshold <= 1"),
            "autostart": (False, "read-only"),
            "service_queue_depth": ("many", "type"),
        }
        before = client.get_parameters(*(name.replace("__", ".") for name in refused))
        for name, (value, reason) in refused.items():
            (result,) = client.set_parameters(**{name: value})
            assert not result.successful and reason in result.reason, (name, result.reason)
        assert client.get_parameters(*before) == before

        # Debug output and enable switch at once.
        assert client.set_parameters(publish_debug_image=False)[0].successful
        client.clear()
        assert client.track_frame(frames[3], timeout=30) is not None
        assert not client.wait_for(lambda r: r.debug_images, 1.0)
        assert client.set_parameters(publish_debug_image=True)[0].successful
        assert client.track_frame(frames[4], timeout=30) is not None
        assert client.wait_for(lambda r: r.debug_images, 5)
        assert client.set_parameters(enabled=False)[0].successful
        client.clear()
        client.publish_frame(frames[5])
        assert not client.wait_for(lambda r: r.targets, 1.5), "outputs while enabled is false"
        assert client.enable(True).success
        assert client.get_parameters("enabled") == {"enabled": True}  # the service keeps it in step
        assert client.track_frame(frames[6], timeout=30) is not None
        assert "parameter change refused" in node.log()
