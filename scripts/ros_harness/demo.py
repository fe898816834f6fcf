"""End-to-end ROS demo: a real video (or a recorded bag) played as a camera topic into the segtrack node.

PYTHONPATH=scripts python -m ros_harness.demo [--frames DIR | --video FILE | --bag BAG [--topic T]]
                                              [--box x,y,w,h] [--fps 24] [--out out/ros_demo]

Starts the node as its own process, publishes the frames at the camera rate, sets the target through
~/set_target (box around the first ground-truth mask, or --box), records what the node publishes and
writes an overlay video (what a viewer of the outputs would see: each frame with the newest result
available when it was shown) and a summary JSON. Prints frames in/processed/dropped and the latency
from the image stamp to the receipt of the node's TrackedTarget.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from segtrack_core.bag import Bag, BagTopic
from segtrack_core.errors import SegtrackError
from segtrack_core.geometry import mask_to_box
from segtrack_core.evaluation.datasets import default_data_root
from segtrack_core.metrics import region_similarity
from segtrack_core.types import Box, TrackResult, TrackState
from segtrack_core.visualize import draw_overlay


DEFAULT_FRAMES = default_data_root() / "davis2016" / "car-shadow" / "frames"


def load_frames(args: argparse.Namespace) -> tuple[list[np.ndarray], float]:
    if args.video:
        capture = cv2.VideoCapture(str(args.video))
        if not capture.isOpened():
            raise SystemExit(f"cannot open video {args.video}")
        fps = args.fps or capture.get(cv2.CAP_PROP_FPS) or 24.0
        frames = []
        while len(frames) < args.max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
    else:
        paths = sorted(p for p in Path(args.frames).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[:args.max_frames]]
        fps = args.fps or 24.0
    if len(frames) < 2:
        raise SystemExit("need at least two frames")
    return frames, fps


def load_bag_frames(args: argparse.Namespace, bag: Bag, topic: BagTopic) -> tuple[list[np.ndarray], float]:
    """Frame i is message i of the topic, the message the replay publishes for it."""
    frames, times = [], []
    for message in itertools.islice(bag.messages(topic), args.max_frames):
        frames.append(bag.frame(topic, message)[0])
        times.append(message.log_time_ns)
    if len(frames) < 2:
        raise SystemExit("need at least two frames")
    recorded = (len(times) - 1) * 1e9 / (times[-1] - times[0]) if times[-1] > times[0] else 0.0
    return frames, args.fps or recorded or 24.0


def start_tracking_on_bag(client, bag: Bag, topic: BagTopic, publish, box, timeout: float = 60.0):
    """TrackerClient.start_tracking with the topic's first message (stamped now) as the target's frame."""
    first = next(bag.messages(topic))
    deadline = time.monotonic() + timeout
    while True:
        stamp = time.time_ns()
        publish(bag.restamped(topic, first, stamp))
        time.sleep(0.2)
        response = client.set_target(Box(*box), stamp=stamp)
        if response.success or time.monotonic() > deadline or "no buffered frame" not in response.message:
            return response


def initial_box(args: argparse.Namespace) -> tuple[float, float, float, float]:
    if args.box:
        values = [float(v) for v in args.box.split(",")]
        if len(values) != 4:
            raise SystemExit("--box is x,y,w,h")
        return tuple(values)
    if args.video or args.bag:
        raise SystemExit("--box x,y,w,h is needed with --video and --bag")
    mask_path = Path(args.frames).parent / "masks" / "00000.png"
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise SystemExit(f"no ground-truth mask at {mask_path}; pass --box x,y,w,h")
    return mask_to_box(mask > 0).as_tuple()


def percentile(values: list[float], q: float) -> Optional[float]:
    return float(np.percentile(values, q)) if values else None


def run(args: argparse.Namespace) -> dict:
    from segtrack_ros.conversions import result_from_messages, stamp_to_ns, state_from_code
    from segtrack_ros.replay import play

    from .client import NodeProcess, TrackerClient, configure_this_process, diagnostic_value

    with contextlib.ExitStack() as stack:
        bag = stack.enter_context(Bag(args.bag)) if args.bag else None
        topic = bag.topic(args.topic) if bag else None
        frames, fps = load_bag_frames(args, bag, topic) if bag else load_frames(args)
        box = initial_box(args)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        domain_id = args.domain_id if args.domain_id is not None else 1 + os.getpid() % 100
        configure_this_process(domain_id)
        parameters = {"backend": args.backend, "tracker.runtime.device": args.device, "publish_debug_image": False,
                      "use_compressed": bool(topic and topic.compressed)}
        print(f"starting segtrack node (backend {args.backend}, device {args.device}, ROS domain {domain_id})")
        node = stack.enter_context(NodeProcess(domain_id, parameters, log_path=out / "node.log"))
        client = stack.enter_context(TrackerClient(domain_id))
        if not client.wait_for_services(90) or not client.wait_for_subscriber(10, parameters["use_compressed"]):
            raise SystemExit(f"the node did not come up; its log:\n{node.log()}")
        if bag:
            publish = (client.compressed_pub if topic.compressed else client.image_pub).publish
            response = start_tracking_on_bag(client, bag, topic, publish, box)
        else:
            response = client.start_tracking(frames[0], box, timeout=60)
        if not response.success:
            raise SystemExit(f"set_target failed: {response.message}")
        print(f"target {response.target_id} set on frame 0 with box {tuple(round(v, 1) for v in box)}; "
              f"playing {len(frames) - 1} frames at {fps:g} fps")
        client.clear()
        if bag:
            # The replay, restamped: to the node the bag is a live camera whose first frame holds the target.
            stamps = play(bag, topic, publish, rate=args.fps, restamp=True, start=1, count=len(frames) - 1).stamps
        else:
            stamps = []
            start = time.monotonic()
            for i, frame in enumerate(frames[1:]):
                time.sleep(max(0.0, start + i / fps - time.monotonic()))
                stamps.append(client.publish_frame(frame))
        last = stamps[-1]
        client.wait_for(lambda r: any(stamp_to_ns(m.header.stamp) == last for _, m in r.targets), 30)
        # Let one more diagnostics message report the final counts.
        seen = len(client.received.diagnostics)
        client.wait_for(lambda r: len(r.diagnostics) > seen, 3)
        received = client.received
        node_alive = node.alive()

    by_stamp = {stamp: i + 1 for i, stamp in enumerate(stamps)}
    targets = {stamp_to_ns(m.header.stamp): (t, m) for t, m in received.targets}
    masks = {stamp_to_ns(m.header.stamp): m for _, m in received.masks}
    latencies = [(t - s) * 1e-6 for s, (t, _) in targets.items() if s in by_stamp]
    node_latencies = [m.latency_ms for _, (_, m) in targets.items()]
    tracker_ms = [m.tracker_ms for _, (_, m) in targets.items()]
    diagnostics = received.diagnostics[-1][1] if received.diagnostics else None
    dropped = int(diagnostic_value(diagnostics, "frames_dropped")) if diagnostics else None

    video_path = out / "ros_demo.mp4"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    truth_dir = None if args.video or args.bag else Path(args.frames).parent / "masks"
    ious = []
    shown: Optional[TrackResult] = None
    for stamp, index in by_stamp.items():
        # Show the newest result whose image was taken no later than this frame.
        done = [s for s in targets if s <= stamp and s in masks]
        if done:
            newest = max(done)
            shown = result_from_messages(targets[newest][1], masks[newest])
            label = f"frame {index}" + ("" if newest == stamp else f" (result of frame {by_stamp.get(newest, 0)})")
        else:
            label = f"frame {index} (no result yet)"
        image = draw_overlay(frames[index], shown, label) if shown is not None else frames[index]
        writer.write(image)
        truth_path = truth_dir / f"{index:05d}.png" if truth_dir else None
        if stamp in targets and stamp in masks and truth_path is not None and truth_path.exists():
            truth = cv2.imread(str(truth_path), cv2.IMREAD_GRAYSCALE) > 0
            mask = result_from_messages(targets[stamp][1], masks[stamp]).mask
            ious.append(region_similarity(mask, truth))
    writer.release()

    summary = {
        "backend": args.backend,
        "device": diagnostic_value(diagnostics, "device") if diagnostics else args.device,
        "camera_fps": fps,
        "frames_in": len(stamps),
        "processed": len([s for s in targets if s in by_stamp]),
        "dropped": dropped,
        "lost": sum(1 for _, m in targets.values() if state_from_code(m.state) is TrackState.LOST),
        "latency_ms_median": percentile(latencies, 50),
        "latency_ms_p90": percentile(latencies, 90),
        "node_latency_ms_median": percentile(node_latencies, 50),
        "tracker_ms_median": percentile(tracker_ms, 50),
        "mean_iou_processed_frames": float(np.mean(ious)) if ious else None,
        "node_alive_at_end": node_alive,
        "video": str(video_path),
    }
    (out / "ros_demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--frames", default=str(DEFAULT_FRAMES), help="folder of frames (sorted by name)")
    source.add_argument("--video", help="video file")
    source.add_argument("--bag", help="rosbag2 bag (folder, .db3 or .mcap): its image topic is replayed, "
                                      "restamped, at the recorded speed (or --fps)")
    parser.add_argument("--topic", help="the bag's image topic (needed when it has more than one)")
    parser.add_argument("--box", help="initial box x,y,w,h (default: around frames/../masks/00000.png)")
    parser.add_argument("--fps", type=float, default=None,
                        help="camera rate (default 24, or the video's; a bag plays at its recorded times)")
    parser.add_argument("--max-frames", type=int, default=1000)
    parser.add_argument("--backend", default="d3s2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="out/ros_demo", help="output folder (video, summary, node log)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS domain (default: from the pid)")
    args = parser.parse_args(argv)
    if not args.video and not args.bag and not Path(args.frames).is_dir():
        parser.error(f"no frames folder at {args.frames}")
    try:
        summary = run(args)
    except SegtrackError as exc:  # a bad bag, topic or frame
        print(f"segtrack demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"frames in: {summary['frames_in']}  processed: {summary['processed']}  "
          f"dropped: {summary['dropped']}  lost: {summary['lost']}")
    if summary["latency_ms_median"] is not None:
        print(f"latency (image stamp -> TrackedTarget received): median {summary['latency_ms_median']:.1f} ms, "
              f"p90 {summary['latency_ms_p90']:.1f} ms (tracker alone: median {summary['tracker_ms_median']:.1f} ms)")
    if summary["mean_iou_processed_frames"] is not None:
        print(f"mask IoU with ground truth on processed frames: {summary['mean_iou_processed_frames']:.3f}")
    print(f"wrote {summary['video']} and {Path(args.out) / 'ros_demo_summary.json'}")
    return 0 if summary["processed"] > 0 and summary["node_alive_at_end"] else 1


if __name__ == "__main__":
    sys.exit(main())
