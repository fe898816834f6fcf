"""Newest frame wins: a camera faster than the tracker makes the node drop frames, not queue them.

Uses the default backend (d3s2, ~25 fps on this CPU) fed by a 60 fps camera of real DAVIS frames.
"""

from __future__ import annotations

import os
import time

from prerequisites import needs_ros


pytestmark = needs_ros("the node's frame-drop policy")

DOMAIN_ID = 1 + (os.getpid() + 37) % 100
CAMERA_FPS = 60.0  # well above what any backend sustains on CPU, so frames must drop


def test_fast_camera_frames_are_dropped_not_queued(load_davis_frames):
    from segtrack_core import available_backends
    from segtrack_core.geometry import mask_to_box
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process, diagnostic_value
    from segtrack_ros.conversions import stamp_to_ns

    backend = "d3s2" if "d3s2" in available_backends() else "csrt"
    frames, masks = load_davis_frames("car-shadow", 40)
    configure_this_process(DOMAIN_ID)
    with NodeProcess(DOMAIN_ID, {"backend": backend, "tracker.runtime.device": "cpu"}) as node, \
            TrackerClient(DOMAIN_ID, keep_masks=False) as client:
        assert client.wait_for_services(60), f"no services; node log:\n{node.log()}"
        assert client.wait_for_subscriber(10)
        response = client.start_tracking(frames[0], mask_to_box(masks[0]).as_tuple(), timeout=60)
        assert response.success, response.message
        client.clear()
        # Counts before the camera starts (the target's frame, and any retry of it, are in them).
        assert client.wait_for(lambda r: r.diagnostics, 5)
        before = {name: int(diagnostic_value(client.received.diagnostics[-1][1], name))
                  for name in ("frames_received", "frames_dropped")}

        published = []
        start = time.monotonic()
        for i, frame in enumerate(frames[1:] + frames[1:]):
            # Frame i goes out at its camera time, however long the publishing took.
            time.sleep(max(0.0, start + i / CAMERA_FPS - time.monotonic()))
            published.append(client.publish_frame(frame))
        assert client.wait_for(lambda r: r.targets and stamp_to_ns(r.targets[-1][1].header.stamp) == published[-1],
                               15), "the newest frame was never processed"

        targets = [msg for _, msg in client.received.targets]
        stamps = [stamp_to_ns(t.header.stamp) for t in targets]
        assert set(stamps) <= set(published)
        assert stamps == sorted(stamps), "outputs out of order"
        assert len(targets) < 0.8 * len(published), "the tracker kept up: this run does not test dropping"

        # The node counted what it dropped (diagnostics come once a second).
        def settled(received):
            return any(int(diagnostic_value(m, "frames_processed") or 0) >= len(targets) for _, m in received.diagnostics)

        assert client.wait_for(settled, 5), client.received.diagnostics[-1:]
        last = client.received.diagnostics[-1][1]
        received, dropped = (int(diagnostic_value(last, name)) - before[name]
                             for name in ("frames_received", "frames_dropped"))
        assert dropped > 0
        # No backlog, counted rather than timed: every frame the camera sent was either tracked or dropped
        # in favour of a newer one (none it received was left waiting once the newest frame was tracked).
        assert received <= len(published) and received - dropped == len(targets)  # best effort may lose some
        assert node.alive()
