"""Bag replay: the playing schedule and stamps without ROS, then a bag played into a running node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest


from prerequisites import needs_ros
from bag_files import RECORD_DELAY_NS, stamp_ns, write_image_bag
from segtrack_core.bag import Bag, BagMessage
from segtrack_ros.replay import main as replay_main, play

REPO = Path(__file__).resolve().parents[1]
DOMAIN_ID = 1 + (os.getpid() + 63) % 100
needs_ros_here = needs_ros("bag replay into the node")


@pytest.fixture(scope="module")
def car_bag(car, tmp_path_factory):
    return write_image_bag(tmp_path_factory.mktemp("replay") / "bag", "mcap", car[0])


def timed_play(bag_path, **options):
    published = []
    with Bag(bag_path) as bag:
        topic = bag.topic()
        result = play(bag, topic, lambda data: published.append((time.monotonic(), data)), **options)
    return result, published


def test_recorded_speed_speed_factor_and_fixed_rate(car_bag):
    with Bag(car_bag) as bag:
        recorded = [m.data for m in bag.messages(bag.topic())]
    for options, period in (({}, 0.1), ({"speed": 2.0}, 0.05), ({"rate": 40.0}, 0.025)):
        result, published = timed_play(car_bag, **options)
        assert result.published == 6 and [data for _, data in published] == recorded  # bytes as recorded
        assert result.stamps == [stamp_ns(i) for i in range(6)]
        gaps = np.diff([t for t, _ in published])
        assert np.all(gaps > 0.6 * period), (options, gaps)
        assert result.seconds == pytest.approx(5 * period, abs=0.04)


def test_start_and_count_play_a_slice_on_its_own_schedule(car_bag):
    result, published = timed_play(car_bag, start=2, count=3)
    assert result.stamps == [stamp_ns(i) for i in (2, 3, 4)]
    assert result.seconds == pytest.approx(0.2, abs=0.04) and result.max_lag_ms < 40


def test_restamp_stamps_with_the_publish_time_and_keeps_the_pixels(car_bag, car):
    before = time.time_ns()
    result, published = timed_play(car_bag, rate=100.0, restamp=True)
    assert before < result.stamps[0] < result.stamps[-1] < time.time_ns()
    with Bag(car_bag) as bag:
        topic = bag.topic()
        for index, (_, data) in enumerate(published):
            frame, stamp = bag.frame(topic, BagMessage(index, stamp_ns(index) + RECORD_DELAY_NS, data))
            assert stamp == result.stamps[index] and np.array_equal(frame, car[0][index])


@pytest.mark.parametrize("argv, message", [
    (["{bag}", "--topic", "/nope"], "no topic /nope"),
    (["{bag}", "--speed", "0"], "must be > 0"),
    (["{bag}", "--count", "0"], "--count >= 1"),
    (["/no/such/bag.mcap"], "bag not found"),
])
def test_bad_bags_and_options_give_one_error_line_and_exit_2(capsys, car_bag, argv, message):
    assert replay_main([a.format(bag=car_bag) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("segtrack replay: error:")


@needs_ros_here
@pytest.mark.parametrize("storage, compressed", [("mcap", False), ("sqlite3", True)])
def test_replay_into_the_running_node_reproduces_the_run(car, tmp_path, storage, compressed):
    from segtrack.msg import TrackedTarget
    from segtrack_core.geometry import mask_to_box
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process, isolated_ros_env
    from segtrack_ros.conversions import mask_from_image, stamp_to_ns as msg_stamp

    frames, masks = car
    bag = write_image_bag(tmp_path / "bag", storage, frames, compressed=compressed)
    jpeg = cv2.imencode(".jpg", frames[0])[1].tobytes()
    configure_this_process(DOMAIN_ID)
    # The node listens on the camera topic the bag was recorded from, as on the robot.
    with NodeProcess(DOMAIN_ID, {"backend": "csrt", "use_compressed": compressed},
                     remappings={"image": "/camera/image_raw"}) as node, \
            TrackerClient(DOMAIN_ID, image_topic="/camera/image_raw") as client:
        assert client.wait_for_services(30) and client.wait_for_subscriber(10, compressed), node.log()
        # The target is set on the recorded first frame, with its recorded stamp.
        deadline = time.monotonic() + 20
        while True:
            if compressed:
                client.publish_compressed(jpeg, stamp=stamp_ns(0))
            else:
                client.publish_frame(frames[0], stamp=stamp_ns(0))
            time.sleep(0.2)
            response = client.set_target(mask_to_box(masks[0]), stamp=stamp_ns(0))
            if response.success or time.monotonic() > deadline:
                break
        assert response.success, response.message
        replay = subprocess.run([sys.executable, "-m", "segtrack_ros.replay", str(bag), "--wait", "10"],
                                env=isolated_ros_env(DOMAIN_ID, str(tmp_path)), capture_output=True, text=True,
                                timeout=60, cwd=REPO)
        assert replay.returncode == 0, replay.stderr
        assert "published 6 messages" in replay.stdout
        recorded = {stamp_ns(i): i for i in range(1, 6)}
        client.wait_for(lambda r: stamp_ns(5) in {msg_stamp(m.header.stamp) for _, m in r.targets}, 10)
        received = client.received
        assert node.alive(), node.log()
    targets = {msg_stamp(m.header.stamp): m for _, m in received.targets if msg_stamp(m.header.stamp) in recorded}
    # Best-effort frames may drop under load; the node's outputs carry the recorded stamps.
    assert len(targets) >= 4, (sorted(targets), node.log())
    assert all(t.state == TrackedTarget.STATE_TRACKING for t in targets.values())
    last = max(targets)
    mask = next(mask_from_image(m) for _, m in received.masks if msg_stamp(m.header.stamp) == last)
    truth = masks[recorded[last]]
    assert (mask & truth).sum() > 0.6 * truth.sum()


@needs_ros_here
def test_the_demo_replays_a_bag(car, tmp_path, capsys):
    import json

    from segtrack_core.geometry import mask_to_box
    from ros_harness.demo import main as demo_main

    frames, masks = car
    bag = write_image_bag(tmp_path / "bag", "mcap", frames, compressed=True)
    box = ",".join(f"{v:g}" for v in mask_to_box(masks[0]).as_tuple())
    code = demo_main(["--bag", str(bag), "--box", box, "--backend", "csrt", "--out", str(tmp_path / "out"),
                      "--domain-id", str(DOMAIN_ID)])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads((tmp_path / "out" / "ros_demo_summary.json").read_text())
    assert summary["frames_in"] == 5 and summary["processed"] >= 4 and summary["lost"] == 0, summary
    assert summary["camera_fps"] == pytest.approx(10.0)
    assert "playing 5 frames at 10 fps" in out
    capture = cv2.VideoCapture(summary["video"])
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 5
    capture.release()
