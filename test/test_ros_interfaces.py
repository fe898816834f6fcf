"""The segtrack ROS interfaces build, import and serialise; large images cross processes with our DDS profile.

Every ROS call runs in a child process with the project's ROS environment (ros_harness.env), an isolated
domain id and a temporary ROS_HOME, so nothing leaks into the pytest process or other test runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path


from prerequisites import needs_ros
from ros_harness.env import ros_environment

REPO = Path(__file__).resolve().parents[1]

pytestmark = needs_ros("the generated segtrack interfaces")


def _ros_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, **ros_environment()}
    env.update(
        # Domain from the pid and a random topic name keep concurrent runs on this machine apart.
        ROS_DOMAIN_ID=str(1 + os.getpid() % 100),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_HOME=str(tmp_path / "ros_home"),
        ROS_LOG_DIR=str(tmp_path / "ros_log"),
    )
    env.pop("ROS_PYTHON_CHECK_FIELDS", None)
    return env


def _run_python(code: str, env: dict[str, str], timeout: float = 60) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_interfaces_match_contract_and_round_trip(tmp_path):
    out = _run_python(
        """
        from rclpy.serialization import deserialize_message, serialize_message
        from builtin_interfaces.msg import Time
        from geometry_msgs.msg import Point
        from sensor_msgs.msg import Image
        from segtrack.msg import TrackedTarget
        from segtrack.srv import SetTarget
        from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

        def round_trip(msg):
            copy = deserialize_message(serialize_message(msg), type(msg))
            assert copy == msg and copy is not msg, (msg, copy)
            return copy

        assert (TrackedTarget.STATE_TRACKING, TrackedTarget.STATE_UNCERTAIN, TrackedTarget.STATE_LOST) == (0, 1, 2)
        assert TrackedTarget.get_fields_and_field_types() == {
            "header": "std_msgs/Header", "target_id": "uint32", "state": "uint8", "score": "float",
            "has_box": "boolean", "box": "vision_msgs/BoundingBox2D", "rotated_box": "vision_msgs/BoundingBox2D",
            "tracker_ms": "float", "latency_ms": "float"}
        req = SetTarget.Request
        assert (req.TYPE_BOX, req.TYPE_ROTATED_BOX, req.TYPE_MASK, req.TYPE_POINTS) == (0, 1, 2, 3)
        assert req.get_fields_and_field_types() == {
            "type": "uint8", "box": "vision_msgs/BoundingBox2D", "mask": "sensor_msgs/Image",
            "foreground_points": "sequence<geometry_msgs/Point>", "background_points": "sequence<geometry_msgs/Point>",
            "use_stamp": "boolean", "stamp": "builtin_interfaces/Time"}
        assert SetTarget.Response.get_fields_and_field_types() == {
            "success": "boolean", "message": "string", "target_id": "uint32"}
        assert BoundingBox2D.get_fields_and_field_types() == {
            "center": "vision_msgs/Pose2D", "size_x": "double", "size_y": "double"}

        target = TrackedTarget(target_id=7, state=TrackedTarget.STATE_UNCERTAIN, score=0.25, has_box=True,
                               tracker_ms=12.5, latency_ms=30.0)
        target.header.frame_id = "camera"
        target.header.stamp = Time(sec=1700000000, nanosec=123456789)
        target.box.center.position.x, target.box.center.position.y = 320.5, 240.25
        target.box.size_x, target.box.size_y = 100.0, 50.0
        target.rotated_box.center.theta = -0.75
        copy = round_trip(target)
        assert copy.header.stamp.nanosec == 123456789 and copy.rotated_box.center.theta == -0.75

        mask = Image(height=2, width=3, encoding="mono8", step=3, data=bytes([0, 255, 0, 255, 255, 0]))
        request = SetTarget.Request(type=req.TYPE_POINTS, mask=mask, use_stamp=True, stamp=Time(sec=5, nanosec=6),
                                    foreground_points=[Point(x=10.0, y=20.0)],
                                    background_points=[Point(x=1.0, y=2.0), Point(x=3.0, y=4.0)])
        copy = round_trip(request)
        assert bytes(copy.mask.data) == bytes([0, 255, 0, 255, 255, 0]) and len(copy.background_points) == 2
        round_trip(SetTarget.Response(success=False, message="no frame with that stamp", target_id=3))

        detection = Detection2D(id="car", bbox=BoundingBox2D(size_x=4.0, size_y=2.0),
                                results=[ObjectHypothesisWithPose()])
        detection.results[0].hypothesis.class_id, detection.results[0].hypothesis.score = "car", 0.9
        copy = round_trip(Detection2DArray(detections=[detection, detection]))
        assert copy.detections[1].results[0].hypothesis.class_id == "car"
        print("interfaces ok")
        """,
        _ros_env(tmp_path),
    )
    assert "interfaces ok" in out


_IMAGE_PEER = """
    import sys, time, zlib
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data  # best effort, the QoS camera drivers use
    from sensor_msgs.msg import Image

    role, topic, count, deadline_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    pixels = (np.arange(1080 * 1920 * 3, dtype=np.uint32) % 251).astype(np.uint8)
    expected_crc = zlib.crc32(pixels)
    rclpy.init()
    node = rclpy.create_node("image_" + role)
    deadline = time.monotonic() + deadline_s
    if role == "publisher":
        publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        msg = Image(height=1080, width=1920, encoding="bgr8", step=1920 * 3)
        msg.data = pixels.tobytes()
        for _ in range(count):
            publisher.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.1)  # ~10 Hz
    else:
        intact = []
        node.create_subscription(
            Image, topic, lambda m: intact.append(zlib.crc32(np.asarray(m.data, dtype=np.uint8)) == expected_crc),
            qos_profile_sensor_data)
        last_change, seen = time.monotonic(), 0
        # Stops when all arrived, or 2 s after the last arrival (the rest were lost), or at the deadline.
        while len(intact) < count and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
            if len(intact) != seen:
                last_change, seen = time.monotonic(), len(intact)
            elif seen and time.monotonic() - last_change > 2.0:
                break
        print("received", len(intact), "intact", sum(intact))
    node.destroy_node()
    rclpy.shutdown()
"""


def test_full_hd_best_effort_image_crosses_processes_with_shipped_dds_profile(tmp_path):
    env = _ros_env(tmp_path)
    assert Path(env["FASTDDS_DEFAULT_PROFILES_FILE"]).is_file()
    topic, count = f"image_{uuid.uuid4().hex[:8]}", 20
    peer = textwrap.dedent(_IMAGE_PEER)
    subscriber = subprocess.Popen(
        [sys.executable, "-c", peer, "subscriber", topic, str(count), "30"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        publisher = subprocess.run(
            [sys.executable, "-c", peer, "publisher", topic, str(count), "20"], env=env, capture_output=True,
            text=True, timeout=60,
        )
        assert publisher.returncode == 0, publisher.stderr
        out, err = subscriber.communicate(timeout=40)
    finally:
        subscriber.kill()
    assert subscriber.returncode == 0, err
    received, intact = (int(word) for word in out.split()[1::2])
    # Best effort may lose a first sample while both sides finish matching; the default transports lose all.
    assert received >= count - 3, out
    assert intact == received, out


def test_a_camera_started_from_the_sourced_workspace_delivers_full_hd_frames_to_the_node(tmp_path):
    """The documented camera-side path on a colcon workspace: sourcing it runs segtrack's environment hook,
    so a camera driver started there uses the profile too (without it ~0 of 1080p frames arrive)."""
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process, diagnostic_value

    prefix = tmp_path / "install"  # a colcon install prefix: the layout plus the configured hook
    subprocess.run([str(REPO / "scripts" / "install_ros_layout.sh"), str(prefix), sys.executable], check=True)
    variable = "FASTDDS_DEFAULT_PROFILES_FILE"  # what CMakeLists configures for Kilted
    hooks = prefix / "share" / "segtrack" / "environment"
    hooks.mkdir()
    for template in ("segtrack_fastdds.sh.in", "segtrack_fastdds.dsv.in"):
        text = (REPO / "env-hooks" / template).read_text().replace("@SEGTRACK_PROFILE_VARIABLE@", variable)
        (hooks / template[:-3]).write_text(text)
    profile = prefix / "share" / "segtrack" / "config" / "fastdds_shm.xml"
    dsv_type, dsv_variable, dsv_value = (hooks / "segtrack_fastdds.dsv").read_text().strip().split(";")
    assert (dsv_type, dsv_variable, prefix / dsv_value) == ("set-if-unset", variable, profile)

    base = _ros_env(tmp_path)
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        base.pop(name, None)

    def sourced(env: dict[str, str]) -> dict[str, str]:
        shell = subprocess.run(["bash", "-c", f'AMENT_CURRENT_PREFIX="{prefix}" . "{hooks}/segtrack_fastdds.sh" '
                                              '&& env -0'], env=env, capture_output=True, text=True, check=True)
        return dict(line.split("=", 1) for line in shell.stdout.split("\0") if "=" in line)

    camera_env = sourced(base)
    assert camera_env[variable] == str(profile) and profile.is_file()
    assert sourced({**base, variable: "/mine.xml"})[variable] == "/mine.xml"  # a chosen profile is kept

    domain_id = int(base["ROS_DOMAIN_ID"])
    configure_this_process(domain_id)
    count = 40
    with NodeProcess(domain_id, {"backend": "csrt"}) as node, TrackerClient(domain_id) as client:
        assert client.wait_for_services(30) and client.wait_for_subscriber(10), node.log()
        camera = subprocess.run([sys.executable, "-c", textwrap.dedent(_IMAGE_PEER), "publisher", "/image",
                                 str(count), "20"], env=camera_env, capture_output=True, text=True, timeout=90)
        assert camera.returncode == 0, camera.stderr

        def received(r) -> int:
            values = [diagnostic_value(m, "frames_received") for _, m in r.diagnostics]
            return max((int(v) for v in values if v), default=0)

        client.wait_for(lambda r: received(r) >= count, 5)
        assert received(client.received) >= 0.95 * count, node.log()
