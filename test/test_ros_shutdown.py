"""SIGINT / SIGTERM, once or twice (a terminal's Ctrl-C plus ros2 launch's own), while the node is
tracking (d3s2 on CPU, so a frame is in the tracker when the signal comes): exit code 0, no traceback, and
the worker never publishes after the context is gone."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from prerequisites import needs_ros


pytestmark = needs_ros("SIGINT/SIGTERM shutdown")

DOMAIN_ID = 1 + (os.getpid() + 47) % 100


@pytest.fixture(scope="module")
def client():
    from ros_harness.client import TrackerClient, configure_this_process

    configure_this_process(DOMAIN_ID)
    with TrackerClient(DOMAIN_ID, keep_masks=False) as client:
        yield client


@pytest.mark.parametrize("signum, times", [(signal.SIGINT, 1), (signal.SIGINT, 2), (signal.SIGTERM, 1),
                                           (signal.SIGTERM, 2)],
                         ids=["SIGINT", "SIGINT-twice", "SIGTERM", "SIGTERM-twice"])
def test_signals_while_tracking_end_the_node_cleanly(client, small_clip, signum, times):
    from ros_harness.client import NodeProcess

    frames, box = small_clip
    node = NodeProcess(DOMAIN_ID, {"backend": "d3s2", "tracker.runtime.device": "cpu"})
    stop = threading.Event()

    def camera():  # 30 Hz, faster than d3s2 on CPU: the worker is always busy
        index = 0
        while not stop.is_set():
            client.publish_frame(frames[index % len(frames)])
            index += 1
            time.sleep(1 / 30)

    publisher = threading.Thread(target=camera)
    try:
        assert client.wait_for_services(60) and client.wait_for_subscriber(10), node.log()
        assert client.start_tracking(frames[0], box).success
        client.clear()
        publisher.start()
        assert client.wait_for(lambda r: len(r.targets) >= 3, 20), node.log()
        for _ in range(times):
            node.process.send_signal(signum)
            time.sleep(0.05)
        returncode = node.process.wait(15)
    finally:
        stop.set()
        if publisher.is_alive():
            publisher.join()
        node.stop()
    log = node.log()
    assert returncode == 0, log
    assert "Traceback" not in log and "Failed to publish" not in log and "context is invalid" not in log, log
