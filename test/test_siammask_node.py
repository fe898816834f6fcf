"""The segtrack node runs siammask like any other backend: weights from the node's `weights` parameter
(a checkpoint in the official layout, synthetic weights), and a clear configure error without them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import torch
from prerequisites import needs_ros
from siammask_reference import save_official_layout, tracker_reference

from segtrack_core import create_tracker
from segtrack_ros.parameters import tracker_config

REPO = Path(__file__).resolve().parent.parent
DOMAIN_ID = 1 + (os.getpid() + 53) % 100
needs_ros_here = needs_ros("SiamMask in the node")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return save_official_layout(tmp_path_factory.mktemp("siammask_node") / "synthetic.pth")


def test_node_weights_parameter_reaches_the_siammask_config(checkpoint):
    config = tracker_config("siammask", "vot", {"tracker.weights": str(checkpoint), "tracker.runtime.device": "cpu"})
    tracker = create_tracker("siammask", config)
    assert tracker.config.lr == 0.25 and tracker.config.weights == str(checkpoint) and tracker.device == "cpu"


@needs_ros_here
def test_node_tracks_with_siammask(checkpoint, load_davis_frames):
    from segtrack.msg import TrackedTarget
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process
    from segtrack_ros.conversions import mask_from_image

    frames = load_davis_frames("car-shadow", 4)[0]
    reference = tracker_reference()["target_mask"] > 0
    configure_this_process(DOMAIN_ID)
    parameters = {"backend": "siammask", "parameter_set": "davis", "tracker.weights": str(checkpoint),
                  "tracker.runtime.device": "cpu", "tracker.tracking_threshold": 0.5}
    with NodeProcess(DOMAIN_ID, parameters) as node, TrackerClient(DOMAIN_ID) as client:
        assert client.wait_for_services(60), f"node services never appeared; node log:\n{node.log()}"
        assert client.wait_for_subscriber(30), f"node never subscribed; node log:\n{node.log()}"
        response = client.start_tracking(frames[0], (313, 88, 342, 194))
        assert response.success, response.message
        for t in range(3):
            outputs = client.track_frame(frames[t + 1], timeout=30)
            assert outputs is not None, f"no outputs; node log:\n{node.log()}"
            target, mask_msg, _ = outputs
            assert target.state == TrackedTarget.STATE_TRACKING
            assert int((mask_from_image(mask_msg) != reference[t]).sum()) <= 10


@needs_ros_here
def test_node_without_weights_fails_configure_with_the_download_hint():
    from ros_harness.client import NodeProcess

    with NodeProcess(DOMAIN_ID, {"backend": "siammask", "tracker.runtime.device": "cpu"}) as node:
        deadline = time.monotonic() + 60
        while "configure failed" not in node.log() and time.monotonic() < deadline and node.alive():
            time.sleep(0.5)
        log = node.log()
    assert "configure failed" in log and "SiamMask_DAVIS.pth" in log and "weights" in log, log
