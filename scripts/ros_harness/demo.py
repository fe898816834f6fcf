"""End-to-end ROS demo: a real video (or a recorded bag) played as a camera topic into the segtrack node.

PYTHONPATH=scripts python -m ros_harness.demo [--frames DIR | --video FILE | --bag BAG [--topic T]]
                                              [--box x,y,w,h] [--fps 24] [--param NAME:=VALUE] [--out DIR]

Starts the node as its own process, publishes the frames at the camera rate, sets the target through
~/set_target (the first ground-truth box beside the frames: a DAVIS clip's ../masks or a VOT sequence's
../groundtruth.txt; or --box), records what the node publishes and writes an overlay video (what a viewer
of the outputs would see: each frame with the newest result available when it was shown) and a summary
JSON. Prints frames in / processed / dropped, the effective rate of results, the latency from the image
stamp to the receipt of the node's TrackedTarget, and the IoU with the ground truth on processed frames.
`make demo` plays UAV123's boat1 (drone footage, 1280x720) at its recorded 10 fps.
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
from typing import Callable, NamedTuple, Optional

import cv2
import numpy as np

from segtrack_core.bag import Bag, BagTopic
from segtrack_core.errors import SegtrackError
from segtrack_core.geometry import mask_to_box
from segtrack_core.evaluation.datasets import DavisSequence, VotSequence, default_data_root
from segtrack_core.metrics import box_iou, region_similarity
from segtrack_core.types import Box, TrackResult, TrackState
from segtrack_core.visualize import draw_overlay


DEFAULT_FRAMES = default_data_root() / "boxes" / "boat1" / "imgs"


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


class GroundTruth(NamedTuple):
    """The annotation beside a frames folder: a DAVIS clip's masks or a VOT sequence's boxes."""

    metric: str  # what ``score`` measures
    first_box: tuple[float, float, float, float]
    score: Callable[[int, TrackResult], float]  # frame index, result -> IoU


def load_ground_truth(frames_dir: Path) -> Optional[GroundTruth]:
    sequence = frames_dir.parent
    if DavisSequence.matches(sequence):
        davis = DavisSequence.load(sequence)
        return GroundTruth("mask IoU", mask_to_box(davis.gt_mask(0)).as_tuple(),
                           lambda index, result: region_similarity(result.mask, davis.gt_mask(index)))
    if VotSequence.matches(sequence):
        boxes = [polygon_box(polygon) for polygon in VotSequence.load(sequence).polygons]
        return GroundTruth("box IoU", boxes[0],
                           lambda index, result: box_iou(result.box.as_tuple(), boxes[index]) if result.box else 0.0)
    return None


def polygon_box(polygon: np.ndarray) -> tuple[float, float, float, float]:
    xs, ys = polygon[0::2], polygon[1::2]
    return float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())


def initial_box(args: argparse.Namespace, truth: Optional[GroundTruth]) -> tuple[float, float, float, float]:
    if args.box:
        values = [float(v) for v in args.box.split(",")]
        if len(values) != 4:
            raise SystemExit("--box is x,y,w,h")
        return tuple(values)
    if truth is None:
        raise SystemExit("no ground truth beside the frames (../masks or ../groundtruth.txt): pass --box x,y,w,h")
    return truth.first_box


def node_parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition(":=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:=VALUE, got {text!r}")
    return name, value


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
        truth = None if args.video or args.bag else load_ground_truth(Path(args.frames))
        box = initial_box(args, truth)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        domain_id = args.domain_id if args.domain_id is not None else 1 + os.getpid() % 100
        configure_this_process(domain_id)
        parameters = {"backend": args.backend, "tracker.runtime.device": args.device, "publish_debug_image": False,
                      "use_compressed": bool(topic and topic.compressed), **dict(args.param)}
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
    ious = []
    shown: Optional[TrackResult] = None
    for stamp, index in by_stamp.items():
        # Show the newest result whose image was taken no later than this frame, as a viewer would.
        done = [s for s in targets if s <= stamp and s in masks]
        if done:
            newest = max(done)
            shown = result_from_messages(targets[newest][1], masks[newest])
            label = f"frame {index}" if newest == stamp else (
                f"frame {index}, result of frame {by_stamp.get(newest, 0)} ({(stamp - newest) * 1e-6:.0f} ms older)")
        else:
            label = f"frame {index} (no result yet)"
        image = draw_overlay(frames[index], shown, label) if shown is not None else frames[index]
        writer.write(image)
        if truth is not None and stamp in targets and stamp in masks:
            ious.append(truth.score(index, result_from_messages(targets[stamp][1], masks[stamp])))
    writer.release()
    processed = len([s for s in targets if s in by_stamp])
    # From the first frame sent to the last result received: the rate a subscriber got results at.
    span_s = (max(t for t, _ in targets.values()) - stamps[0]) * 1e-9 if targets else 0.0

    summary = {
        "backend": args.backend,
        "device": diagnostic_value(diagnostics, "device") if diagnostics else args.device,
        "camera_fps": fps,
        "frames_in": len(stamps),
        "processed": processed,
        "effective_fps": processed / span_s if span_s > 0 else None,
        "dropped": dropped,
        "lost": sum(1 for _, m in targets.values() if state_from_code(m.state) is TrackState.LOST),
        "latency_ms_median": percentile(latencies, 50),
        "latency_ms_p90": percentile(latencies, 90),
        "node_latency_ms_median": percentile(node_latencies, 50),
        "tracker_ms_median": percentile(tracker_ms, 50),
        "metric": truth.metric if truth else None,
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
    parser.add_argument("--param", action="append", default=[], type=node_parameter, metavar="NAME:=VALUE",
                        help="a node parameter, as after ros2 run's -p (repeatable), e.g. tracker.runtime.threads:=1")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS domain (default: from the pid)")
    args = parser.parse_args(argv)
    if not args.video and not args.bag and not Path(args.frames).is_dir():
        parser.error(f"no frames folder at {args.frames}")
    try:
        summary = run(args)
    except SegtrackError as exc:  # a bad bag, topic or frame
        print(f"segtrack demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"frames in: {summary['frames_in']} at {summary['camera_fps']:g} fps  processed: {summary['processed']} "
          f"({100 * summary['processed'] / summary['frames_in']:.0f}%)  dropped: {summary['dropped']}  "
          f"lost: {summary['lost']}")
    if summary["effective_fps"] is not None:
        print(f"effective rate: {summary['effective_fps']:.1f} results/s")
    if summary["latency_ms_median"] is not None:
        print(f"latency (image stamp -> TrackedTarget received): median {summary['latency_ms_median']:.1f} ms, "
              f"p90 {summary['latency_ms_p90']:.1f} ms (tracker alone: median {summary['tracker_ms_median']:.1f} ms)")
    if summary["mean_iou_processed_frames"] is not None:
        print(f"{summary['metric']} with ground truth on processed frames: {summary['mean_iou_processed_frames']:.3f}")
    print(f"wrote {summary['video']} and {Path(args.out) / 'ros_demo_summary.json'}")
    return 0 if summary["processed"] > 0 and summary["node_alive_at_end"] else 1


if __name__ == "__main__":
    sys.exit(main())
