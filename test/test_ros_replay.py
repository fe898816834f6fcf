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


class FakeClock:
    """Monotonic time that moves only when play sleeps or a publish costs time: the schedule is exact
    however loaded the machine is."""

    def __init__(self, publish_cost: float = 0.0) -> None:
        self.t = 1000.0
        self.publish_cost = publish_cost
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.t += seconds


def timed_play(bag_path, clock=None, **options):
    """Play with ``clock`` (a FakeClock, or the real one when None); each publish is recorded with its
    time on that clock, then advances it by the clock's publish cost."""
    published = []

    def publish(data):
        published.append((clock.now() if clock else time.monotonic(), data))
        if clock:
            clock.t += clock.publish_cost

    with Bag(bag_path) as bag:
        topic = bag.topic()
        pacing = {"now": clock.now, "sleep": clock.sleep} if clock else {}
        result = play(bag, topic, publish, **options, **pacing)
    return result, published


def test_recorded_speed_speed_factor_and_fixed_rate(car_bag):
    with Bag(car_bag) as bag:
        recorded = [m.data for m in bag.messages(bag.topic())]
    for options, period in (({}, 0.1), ({"speed": 2.0}, 0.05), ({"rate": 40.0}, 0.025)):
        clock = FakeClock()
        begin = clock.t
        result, published = timed_play(car_bag, clock, **options)
        assert result.published == 6 and [data for _, data in published] == recorded  # bytes as recorded
        assert result.stamps == [stamp_ns(i) for i in range(6)]
        # Message i goes out at i periods after the first (recorded 100 ms apart, / speed, or 1 / rate).
        assert [t - begin for t, _ in published] == pytest.approx([i * period for i in range(6)], abs=1e-9)
        assert len(clock.sleeps) == 5, options  # the first goes out at once
        assert result.seconds == pytest.approx(5 * period, abs=1e-9)
        assert result.max_lag_ms == pytest.approx(0.0, abs=1e-6)


def test_publish_cost_within_a_period_keeps_the_schedule_and_is_reported_as_lag(car_bag):
    clock = FakeClock(publish_cost=0.01)
    begin = clock.t
    result, published = timed_play(car_bag, clock, rate=40.0)
    assert [t - begin for t, _ in published] == pytest.approx([i * 0.025 for i in range(6)], abs=1e-9)
    # Each message is out 10 ms after its slot (the lag counts until publish returns).
    assert result.max_lag_ms == pytest.approx(10.0, abs=1e-6)
    assert result.seconds == pytest.approx(5 * 0.025 + 0.01, abs=1e-9)


def test_a_publisher_slower_than_the_period_is_not_slept_for_and_its_lag_is_reported(car_bag):
    clock = FakeClock(publish_cost=0.06)  # more than two 25 ms periods per message
    begin = clock.t
    result, published = timed_play(car_bag, clock, rate=40.0)
    assert result.published == 6 and clock.sleeps == []  # always behind: never waits
    # Back to back, one publish cost apart; the last ends 6 * 60 ms after the start, 5 * 25 ms after its slot.
    assert [t - begin for t, _ in published] == pytest.approx([i * 0.06 for i in range(6)], abs=1e-9)
    assert result.seconds == pytest.approx(0.36, abs=1e-9)
    assert result.max_lag_ms == pytest.approx((0.36 - 5 * 0.025) * 1000, abs=1e-6)


def test_start_and_count_play_a_slice_on_its_own_schedule(car_bag):
    clock = FakeClock()
    begin = clock.t
    result, published = timed_play(car_bag, clock, start=2, count=3)
    assert result.stamps == [stamp_ns(i) for i in (2, 3, 4)]
    # The slice starts at once: its first message is at offset 0, not at message 2's recorded time.
    assert [t - begin for t, _ in published] == pytest.approx([0.0, 0.1, 0.2], abs=1e-9)
    assert result.seconds == pytest.approx(0.2, abs=1e-9)
    assert result.max_lag_ms == pytest.approx(0.0, abs=1e-6)


def test_restamp_stamps_with_the_publish_time_and_keeps_the_pixels(car_bag, car):
    before = time.time_ns()
    result, published = timed_play(car_bag, rate=100.0, restamp=True)
    after = time.time_ns()
    assert before < result.stamps[0] < result.stamps[-1] < after  # stamped while playing, in order
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
